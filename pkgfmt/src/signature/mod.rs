//! E.5 signature block (being written).
