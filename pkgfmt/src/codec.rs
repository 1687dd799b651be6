//! The one [`Reader`] every fixed layout of the format is read through.
//!
//! E.2.1: "Multi-octet numeric values are encoded in network byte order
//! (big endian format)." The layouts themselves are `#[binrw]` structs next
//! to the table they mirror, with their bounds checks in the derive: a
//! field check is a `try_map` that fails with the [`ParseErrorKind`] at the
//! field's offset, and an array is read with a `count` taken from the
//! Value's length. The Reader turns a binrw failure into that typed error
//! (running out of bytes becomes `Truncated` or `BadLength`), and checks
//! that a Value leaves no bytes over, the way rustls's `Reader` does. Offsets
//! in its errors are relative to the start of the bytes it was given.

use std::io::Cursor;

use binrw::{BinRead, BinResult, BinWrite, Endian};

use crate::error::ParseErrorKind;

/// A problem and where it is: an offset relative to the start of the
/// bytes being read (a Value field, the command list, the header).
pub(crate) type ValueError = (usize, ParseErrorKind);

/// A fixed-length layout: a header or the fixed fields of a command.
pub(crate) trait Fixed: for<'a> BinRead<Args<'a> = ()> + for<'a> BinWrite<Args<'a> = ()> {
    /// Its length in octets.
    const LEN: usize;
    /// What it is, for a `Truncated` error.
    const WHAT: &'static str;
}

/// A Value format that fills its whole Value field (Tables 72, 74–77 and
/// the commands whose Length "MUST be 0").
pub(crate) trait WholeValue: Sized {
    /// The lengths it allows, for a `BadLength` error ("4", "a multiple of 4").
    const EXPECTED: &'static str;
    /// Read it from a Value field of `len` octets.
    fn read(cursor: &mut Cursor<&[u8]>, len: usize) -> BinResult<Self>;
}

/// The commands whose Length "MUST be 0" (E.4.2, E.4.8, E.4.9): no Value.
impl WholeValue for () {
    const EXPECTED: &'static str = "0";
    fn read(_: &mut Cursor<&[u8]>, _: usize) -> BinResult<()> {
        Ok(())
    }
}

/// A cursor over received bytes.
pub(crate) struct Reader<'a> {
    cursor: Cursor<&'a [u8]>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { cursor: Cursor::new(bytes) }
    }

    fn bytes(&self) -> &'a [u8] {
        self.cursor.get_ref()
    }

    /// Octets read so far.
    pub(crate) fn position(&self) -> usize {
        self.cursor.position() as usize
    }

    /// Octets not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes().len() - self.position()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Read one fixed layout. Too few octets is `Truncated` at the end of
    /// the bytes; a failed field check is its error at that field.
    pub(crate) fn read<T: Fixed>(&mut self) -> Result<T, ValueError> {
        let available = self.remaining();
        T::read_options(&mut self.cursor, Endian::Big, ()).map_err(|e| {
            if e.is_eof() {
                (self.bytes().len(), ParseErrorKind::Truncated { what: T::WHAT, needed: T::LEN as u64, available: available as u64 })
            } else {
                field_error(e, T::WHAT)
            }
        })
    }

    /// Read a whole Value field as `T`: too few octets, or octets left over
    /// after `T`, are a `BadLength` naming `command` (Table 67: "the length in
    /// octets of the Value field").
    pub(crate) fn read_whole<T: WholeValue>(mut self, command: &'static str) -> Result<T, ValueError> {
        let start = self.position();
        let len = self.remaining();
        let bad_length = || (start, ParseErrorKind::BadLength { command, expected: T::EXPECTED, found: len as u32 });
        let value = T::read(&mut self.cursor, len).map_err(|e| if e.is_eof() { bad_length() } else { field_error(e, command) })?;
        if !self.is_empty() {
            return Err(bad_length());
        }
        Ok(value)
    }

    /// The next `n` octets, if there are that many.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let start = self.position();
        let bytes = self.bytes().get(start..start.checked_add(n)?)?;
        self.cursor.set_position((start + n) as u64);
        Some(bytes)
    }

    /// Everything not read yet.
    pub(crate) fn rest(mut self) -> &'a [u8] {
        let n = self.remaining();
        self.take(n).unwrap_or_default()
    }

    /// A variable-length field that fixed fields locate by offset and
    /// length (Tables 69–71: "The offset in octets from the beginning of the
    /// Value field"). It must lie inside the bytes and, unless empty, not
    /// overlap the fixed fields read so far.
    pub(crate) fn field(&self, name: &'static str, offset: u32, length: u32) -> Result<&'a [u8], ValueError> {
        let value = self.bytes();
        let fixed = self.position();
        if (offset as usize) < fixed && length > 0 {
            return Err((offset as usize, ParseErrorKind::FieldOverlapsFixed { field: name, offset, fixed: fixed as u32 }));
        }
        let out_of_bounds = || (offset as usize, ParseErrorKind::FieldOutOfBounds { field: name, offset, length, value_len: value.len() as u32 });
        let end = usize::try_from(offset as u64 + length as u64).map_err(|_| out_of_bounds())?;
        value.get(offset as usize..end).ok_or_else(out_of_bounds)
    }
}

/// A binrw failure other than running out of bytes: a field check's
/// [`ParseErrorKind`] at the field's offset, else the decoder's message.
fn field_error(e: binrw::Error, what: &'static str) -> ValueError {
    match e.root_cause() {
        binrw::Error::Custom { pos, err } => match err.downcast_ref::<ParseErrorKind>() {
            Some(kind) => (*pos as usize, kind.clone()),
            None => (*pos as usize, ParseErrorKind::Layout { what, detail: err.to_string() }),
        },
        other => (other_pos(other), ParseErrorKind::Layout { what, detail: other.to_string() }),
    }
}

fn other_pos(e: &binrw::Error) -> usize {
    match e {
        binrw::Error::BadMagic { pos, .. }
        | binrw::Error::AssertFail { pos, .. }
        | binrw::Error::NoVariantMatch { pos }
        | binrw::Error::EnumErrors { pos, .. }
        | binrw::Error::Custom { pos, .. } => *pos as usize,
        _ => 0,
    }
}

/// A layout's big-endian octets.
pub(crate) fn encode<T>(layout: &T) -> Vec<u8>
where
    T: for<'a> BinWrite<Args<'a> = ()>,
{
    let mut c = Cursor::new(Vec::new());
    layout.write_options(&mut c, Endian::Big, ()).expect("writing to a Vec cannot fail");
    c.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use binrw::binrw;

    #[binrw]
    #[brw(big)]
    #[derive(Debug, PartialEq)]
    struct Pair {
        a: u32,
        #[br(try_map = |b: u32| if b < 10 { Ok(b) } else { Err(ParseErrorKind::UnsupportedHashType(b)) })]
        b: u32,
    }

    impl Fixed for Pair {
        const LEN: usize = 8;
        const WHAT: &'static str = "pair";
    }

    #[test]
    fn typed_errors_at_their_offsets() {
        let good = encode(&Pair { a: 1, b: 2 });
        assert_eq!(good.len(), Pair::LEN);
        assert_eq!(Reader::new(&good).read::<Pair>().unwrap(), Pair { a: 1, b: 2 });
        // A field check fails at the field's offset.
        let bad = encode(&Pair { a: 1, b: 10 });
        assert_eq!(Reader::new(&bad).read::<Pair>().unwrap_err(), (4, ParseErrorKind::UnsupportedHashType(10)));
        // Running out is Truncated at the end of the bytes.
        for n in 0..Pair::LEN {
            let e = Reader::new(&good[..n]).read::<Pair>().unwrap_err();
            assert_eq!(e, (n, ParseErrorKind::Truncated { what: "pair", needed: 8, available: n as u64 }));
        }
    }

    #[binrw]
    #[brw(big)]
    #[br(assert(x != 0, "x must not be 0"))]
    #[derive(Debug)]
    struct Untyped {
        x: u32,
    }

    impl Fixed for Untyped {
        const LEN: usize = 4;
        const WHAT: &'static str = "untyped";
    }

    /// A decoder failure without a typed error is still an error, not a panic.
    #[test]
    fn untyped_failures_keep_the_message() {
        let e = Reader::new(&[0, 0, 0, 0]).read::<Untyped>().unwrap_err();
        assert!(matches!(&e.1, ParseErrorKind::Layout { what: "untyped", detail } if detail.contains("x must not be 0")), "{e:?}");
        assert!(Reader::new(&[0, 0, 0, 1]).read::<Untyped>().is_ok());
    }

    #[test]
    fn whole_values_leave_nothing_over() {
        assert_eq!(Reader::new(&[]).read_whole::<()>("End"), Ok(()));
        let e = Reader::new(&[0]).read_whole::<()>("End").unwrap_err();
        assert_eq!(e, (0, ParseErrorKind::BadLength { command: "End", expected: "0", found: 1 }));
    }

    #[test]
    fn fields_are_bounded() {
        let bytes = [0u8; 12];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.take(4), Some(&[0u8; 4][..]));
        assert_eq!(r.field("F", 4, 8).unwrap().len(), 8);
        assert_eq!(r.field("F", 2, 0).unwrap().len(), 0);
        assert!(matches!(r.field("F", 2, 1), Err((2, ParseErrorKind::FieldOverlapsFixed { .. }))));
        assert!(matches!(r.field("F", 8, 5), Err((8, ParseErrorKind::FieldOutOfBounds { .. }))));
        assert!(matches!(r.field("F", u32::MAX, u32::MAX), Err((_, ParseErrorKind::FieldOutOfBounds { .. }))));
        assert_eq!(r.take(9), None);
        assert_eq!(r.rest().len(), 8);
    }
}
