//! C.3, Table 62 (Option specification) and Table 63 (DeviceIdStruct).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::VoucherError;

/// Table 63 — identifies the one CPE a voucher applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DeviceId {
    /// "for display only and need not be checked".
    pub manufacturer: String,
    /// Six upper-case hexadecimal digits.
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

impl DeviceId {
    /// C.3: OUI, ProductClass and SerialNumber must match the device.
    pub fn matches(&self, oui: &str, product_class: &str, serial: &str) -> bool {
        self.oui.eq_ignore_ascii_case(oui) && self.product_class == product_class && self.serial_number == serial
    }
}

/// Table 62 Mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    Disable,
    EnableWithExpiration,
    EnableWithoutExpiration,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Disable => "Disable",
            Mode::EnableWithExpiration => "EnableWithExpiration",
            Mode::EnableWithoutExpiration => "EnableWithoutExpiration",
        }
    }

    /// Table 48 (GetOptions) Mode value.
    pub fn code(self) -> u32 {
        match self {
            Mode::Disable => 0,
            Mode::EnableWithExpiration => 1,
            Mode::EnableWithoutExpiration => 2,
        }
    }

    pub fn parse(s: &str) -> Result<Mode, VoucherError> {
        Ok(match s {
            "Disable" => Mode::Disable,
            "EnableWithExpiration" => Mode::EnableWithExpiration,
            "EnableWithoutExpiration" => Mode::EnableWithoutExpiration,
            o => return Err(field("Mode", format!("{o:?} is not Disable, EnableWithExpiration or EnableWithoutExpiration"))),
        })
    }
}

/// Table 62 DurationUnits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DurationUnits {
    Days,
    Months,
}

impl DurationUnits {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationUnits::Days => "Days",
            DurationUnits::Months => "Months",
        }
    }
}

/// Table 62 — one Option specification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VoucherOption {
    pub vserial_num: String,
    pub device_id: DeviceId,
    pub option_ident: String,
    pub option_desc: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_date: Option<OffsetDateTime>,
    /// (Duration, DurationUnits); required for EnableWithExpiration.
    pub duration: Option<(u32, DurationUnits)>,
    pub mode: Mode,
    pub transferable: bool,
}

fn field(field: &'static str, problem: impl Into<String>) -> VoucherError {
    VoucherError::Field { field: field.into(), problem: problem.into() }
}

/// Accept xsd:dateTime and the spec's compact form (`20021025T12:06:34`,
/// Figures 5 and 6); a time without zone is UTC (Table 62 "in UTC").
pub fn parse_date(s: &str) -> Result<OffsetDateTime, VoucherError> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let plain = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let compact = format_description!("[year][month][day]T[hour]:[minute]:[second]");
    let no_zone = s.trim_end_matches('Z');
    PrimitiveDateTime::parse(no_zone, plain)
        .or_else(|_| PrimitiveDateTime::parse(no_zone, compact))
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| field("StartDate", format!("{s:?} is neither xsd:dateTime nor YYYYMMDDTHH:MM:SS")))
}

/// xsd:dateTime in UTC.
pub fn format_date(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC).format(f).expect("formatting a valid date")
}

fn bounded(field_name: &'static str, v: &str, max: usize) -> Result<String, VoucherError> {
    if v.chars().count() > max {
        return Err(field(field_name, format!("longer than {max} characters")));
    }
    Ok(v.to_string())
}

impl VoucherOption {
    /// Read an `<Option>` element (no namespace, per `xmlns=""` in C.3).
    pub fn from_element(opt: roxmltree::Node<'_, '_>) -> Result<VoucherOption, VoucherError> {
        let child = |parent: roxmltree::Node<'_, '_>, name: &'static str| -> Result<Option<String>, VoucherError> {
            let mut found = parent.children().filter(|c| c.is_element() && c.tag_name().name() == name && c.tag_name().namespace().unwrap_or("").is_empty());
            let first = found.next();
            if found.next().is_some() {
                return Err(field(name, "appears more than once"));
            }
            Ok(first.map(|n| n.children().filter(|t| t.is_text()).filter_map(|t| t.text()).collect::<String>().trim().to_string()))
        };
        let req = |parent, name: &'static str| child(parent, name)?.ok_or_else(|| field(name, "missing"));
        let dev = opt.children().find(|c| c.is_element() && c.tag_name().name() == "DeviceId").ok_or_else(|| field("DeviceId", "missing"))?;
        let device_id = DeviceId {
            manufacturer: bounded("Manufacturer", &child(dev, "Manufacturer")?.unwrap_or_default(), 64)?,
            oui: req(dev, "OUI")?,
            product_class: bounded("ProductClass", &req(dev, "ProductClass")?, 64)?,
            serial_number: bounded("SerialNumber", &req(dev, "SerialNumber")?, 64)?,
        };
        if device_id.oui.len() != 6 || !device_id.oui.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(field("OUI", format!("{:?} is not six hexadecimal digits", device_id.oui)));
        }
        let mode = Mode::parse(&req(opt, "Mode")?)?;
        let duration = match (child(opt, "Duration")?, child(opt, "DurationUnits")?) {
            (Some(d), Some(u)) => {
                let n: u32 = d.parse().map_err(|_| field("Duration", format!("{d:?} is not an unsignedInt")))?;
                let units = match u.as_str() {
                    "Days" => DurationUnits::Days,
                    "Months" => DurationUnits::Months,
                    o => return Err(field("DurationUnits", format!("{o:?} is not Days or Months"))),
                };
                Some((n, units))
            }
            (None, None) => None,
            _ => return Err(field("Duration", "Duration and DurationUnits must appear together")),
        };
        if mode == Mode::EnableWithExpiration && duration.is_none() {
            return Err(field("Duration", "required when Mode is EnableWithExpiration"));
        }
        let transferable = match child(opt, "Transferable")?.as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(o) => return Err(field("Transferable", format!("{o:?} is not a boolean"))),
        };
        Ok(VoucherOption {
            vserial_num: bounded("VSerialNum", &req(opt, "VSerialNum")?, 64)?,
            device_id,
            option_ident: bounded("OptionIdent", &req(opt, "OptionIdent")?, 64)?,
            option_desc: bounded("OptionDesc", &child(opt, "OptionDesc")?.unwrap_or_default(), 256)?,
            start_date: child(opt, "StartDate")?.map(|s| parse_date(&s)).transpose()?,
            duration,
            mode,
            transferable,
        })
    }

    /// The `<Option>` element as XML text.
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<Option>");
        let mut el = |name: &str, v: &str| s.push_str(&format!("<{name}>{}</{name}>", escape(v)));
        el("VSerialNum", &self.vserial_num);
        let d = &self.device_id;
        let dev = format!(
            "<DeviceId><Manufacturer>{}</Manufacturer><OUI>{}</OUI><ProductClass>{}</ProductClass><SerialNumber>{}</SerialNumber></DeviceId>",
            escape(&d.manufacturer),
            escape(&d.oui),
            escape(&d.product_class),
            escape(&d.serial_number)
        );
        s.push_str(&dev);
        let mut el = |name: &str, v: &str| s.push_str(&format!("<{name}>{}</{name}>", escape(v)));
        el("OptionIdent", &self.option_ident);
        el("OptionDesc", &self.option_desc);
        if let Some(t) = self.start_date {
            el("StartDate", &format_date(t));
        }
        if let Some((n, u)) = self.duration {
            el("Duration", &n.to_string());
            el("DurationUnits", u.as_str());
        }
        el("Mode", self.mode.as_str());
        if self.transferable {
            el("Transferable", "true");
        }
        s.push_str("</Option>");
        s
    }
}

/// Escape element text (and the double-quoted Id attribute). CR becomes a
/// character reference: a literal CR is read back as LF (XML 1.0 2.11), so
/// an OptionDesc holding one would otherwise be signed and read changed
/// (found with fuzz/fuzz_targets/voucher_option.rs).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\r', "&#13;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_compact_and_xsd() {
        let a = parse_date("20021025T12:06:34").unwrap();
        let b = parse_date("2002-10-25T12:06:34Z").unwrap();
        let c = parse_date("2002-10-25T14:06:34+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(format_date(a), "2002-10-25T12:06:34Z");
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn figure_5_option_parses() {
        let xml = r#"<Option><VSerialNum>987654321</VSerialNum><DeviceId><Manufacturer>2Wire</Manufacturer><OUI>00D09E</OUI><ProductClass>Gateway</ProductClass><SerialNumber>123456789</SerialNumber></DeviceId><OptionIdent>Option Name</OptionIdent><OptionDesc>Option Description</OptionDesc><StartDate>20021025T12:06:34</StartDate><Duration>280</Duration><DurationUnits>Days</DurationUnits><Mode>EnableWithExpiration</Mode></Option>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let o = VoucherOption::from_element(doc.root_element()).unwrap();
        assert_eq!(o.duration, Some((280, DurationUnits::Days)));
        assert!(o.device_id.matches("00d09e", "Gateway", "123456789"));
        let again = roxmltree::Document::parse(&o.to_xml()).unwrap().root_element().document().input_text().to_string();
        let o2 = VoucherOption::from_element(roxmltree::Document::parse(&again).unwrap().root_element()).unwrap();
        assert_eq!(o, o2);
    }

    /// Regression (fuzz/fuzz_targets/voucher_option.rs): a CR inside a
    /// value (`&#13;`; a literal one reads as LF) survives to_xml → parse.
    #[test]
    fn carriage_return_round_trips() {
        let xml = "<Option><VSerialNum>1</VSerialNum><DeviceId><OUI>00D09E</OUI><ProductClass>G</ProductClass><SerialNumber>S</SerialNumber></DeviceId><OptionIdent>a&#13;b</OptionIdent><OptionDesc>x&#13;&#10;y</OptionDesc><Mode>Disable</Mode></Option>";
        let o = VoucherOption::from_element(roxmltree::Document::parse(xml).unwrap().root_element()).unwrap();
        assert_eq!(o.option_desc, "x\r\ny");
        let again = o.to_xml();
        let o2 = VoucherOption::from_element(roxmltree::Document::parse(&again).unwrap().root_element()).unwrap();
        assert_eq!(o2, o);
    }
}
