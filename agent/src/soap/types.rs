//! A.2.1 Data Types on the wire, and the A.2.2 argument rules: how one
//! argument or struct member is read from its element and written back.
//!
//! Each type of Table 6 is a [`DataType`] (string, int[Min:Max],
//! unsignedInt[Min:], boolean, dateTime, base64, arrays `T[N]`, and the
//! structures). The structures and messages of A.3 and A.4 are declared
//! once, in `message.rs`, with [`cwmp_structs!`] and [`cwmp_messages!`]:
//! each member as `rust_field: RustType => ElementName: DataType`, in the
//! order of the spec's table. Decoding and encoding are both generated from
//! that one list, so they cannot disagree on names, order or types.

use roxmltree::Node;

use super::message::Fault;
use super::xml::W;
use super::CWMP;

/// A 9003 "Invalid arguments" fault (A.5.1); [`super::parse`] turns it into
/// 8003 for a Server's methods (A.5.2).
pub(super) fn invalid(why: impl Into<String>) -> Fault {
    Fault::new(9003, format!("Invalid arguments: {}", why.into()))
}

/// The character data of an element (its text children, concatenated).
pub(super) fn text(n: Node<'_, '_>) -> String {
    n.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect::<String>()
}

/// XML Schema boolean lexical forms (A.2.1 sends 1 / 0).
pub(super) fn boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// The local part of a qualified name (`cwmp:ArgStruct` → `ArgStruct`).
fn local(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

/// How values of one A.2.1 data type are read from, and written as, one
/// element. Decoding never trusts the input: a value that does not fit the
/// type is a 9003 fault naming the element.
pub(super) trait DataType {
    /// The Rust value of an element of this type.
    type Value;
    /// The type's qualified name: an array of it declares
    /// `soapenc:arrayType="{TYPE}[n]"`, and its members are elements named
    /// by the local part (`xsd:string` → `<string>`).
    const TYPE: &'static str;
    /// The schema lets the member be left out (`minOccurs="0"`).
    const OPTIONAL: bool = false;
    /// The value held by element `n`.
    fn decode(n: Node<'_, '_>) -> Result<Self::Value, Fault>;
    /// The value of a member that is not in the message.
    fn absent(name: &str) -> Result<Self::Value, Fault> {
        Err(invalid(format!("{name} is missing")))
    }
    /// Write `v` as the element `tag`.
    fn encode(v: &Self::Value, w: &mut W, tag: &str);
}

/// The members of a structure, or the arguments of a message, in order:
/// decoded from the children of one element, encoded as a sequence of
/// elements (the caller writes the enclosing one).
pub(super) trait Members: Sized {
    fn decode_members(n: Node<'_, '_>) -> Result<Self, Fault>;
    fn encode_members(&self, w: &mut W);
}

/// A.2.1 `string`. The `string(N)` maximum lengths of the tables are not
/// enforced (A.2.1: a longer string MAY be refused).
pub(super) struct Str;

impl DataType for Str {
    type Value = String;
    const TYPE: &'static str = "xsd:string";
    fn decode(n: Node<'_, '_>) -> Result<String, Fault> {
        Ok(text(n))
    }
    fn encode(v: &String, w: &mut W, tag: &str) {
        w.leaf(tag, v);
    }
}

/// A.2.1 `unsignedInt[MIN:]` (Table 24's InstanceNumber is `[1:]`).
pub(super) struct UnsignedInt<const MIN: u32 = 0>;

impl<const MIN: u32> DataType for UnsignedInt<MIN> {
    type Value = u32;
    const TYPE: &'static str = "xsd:unsignedInt";
    fn decode(n: Node<'_, '_>) -> Result<u32, Fault> {
        let v: u32 = text(n).trim().parse().map_err(|_| invalid(format!("{} is not an unsignedInt", n.tag_name().name())))?;
        if v < MIN {
            return Err(invalid(format!("{} must be at least {MIN}", n.tag_name().name())));
        }
        Ok(v)
    }
    fn encode(v: &u32, w: &mut W, tag: &str) {
        w.leaf(tag, &v.to_string());
    }
}

/// A.2.1 `int[MIN:MAX]`: the small enumerations of the tables (Status,
/// Notification, State, Mode).
pub(super) struct Int<const MIN: u8, const MAX: u8>;

impl<const MIN: u8, const MAX: u8> DataType for Int<MIN, MAX> {
    type Value = u8;
    const TYPE: &'static str = "xsd:int";
    fn decode(n: Node<'_, '_>) -> Result<u8, Fault> {
        let v: i64 = text(n).trim().parse().map_err(|_| invalid(format!("{} is not an integer", n.tag_name().name())))?;
        u8::try_from(v).ok().filter(|v| (MIN..=MAX).contains(v)).ok_or_else(|| invalid(format!("{} must be in {MIN}..{MAX}, got {v}", n.tag_name().name())))
    }
    /// Written as given, even out of range: the codec does not second-guess
    /// its caller (the schema test shows such a value on the wire).
    fn encode(v: &u8, w: &mut W, tag: &str) {
        w.leaf(tag, &v.to_string());
    }
}

/// A.2.1 `boolean`: sent as 1 / 0, read in either lexical form (Table 48's
/// IsTransferable is an int 0|1 in the schema).
pub(super) struct Boolean;

impl DataType for Boolean {
    type Value = bool;
    const TYPE: &'static str = "xsd:boolean";
    fn decode(n: Node<'_, '_>) -> Result<bool, Fault> {
        boolean(&text(n)).ok_or_else(|| invalid(format!("{} is not a boolean", n.tag_name().name())))
    }
    fn encode(v: &bool, w: &mut W, tag: &str) {
        w.leaf(tag, if *v { "1" } else { "0" });
    }
}

/// A.2.1 `dateTime`, kept as its lexical form (see [`is_date_time`]).
pub(super) struct DateTime;

impl DataType for DateTime {
    type Value = String;
    const TYPE: &'static str = "xsd:dateTime";
    fn decode(n: Node<'_, '_>) -> Result<String, Fault> {
        let s = text(n);
        let t = s.trim();
        if is_date_time(t) {
            Ok(t.to_string())
        } else {
            Err(invalid(format!("{} is not a dateTime: {t:?}", n.tag_name().name())))
        }
    }
    fn encode(v: &String, w: &mut W, tag: &str) {
        w.leaf(tag, v);
    }
}

/// A.2.1 `base64`, as the decoded octets; whitespace (line breaks) inside a
/// value is not significant (A.4.1.3 vouchers).
pub(super) struct Base64;

impl DataType for Base64 {
    type Value = Vec<u8>;
    const TYPE: &'static str = "soapenc:base64";
    fn decode(n: Node<'_, '_>) -> Result<Vec<u8>, Fault> {
        use base64::Engine;
        let t: String = text(n).chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(t).map_err(|e| {
            let array = n.parent_element().map_or(n.tag_name().name(), |p| p.tag_name().name());
            invalid(format!("{array} entry is not base64: {e}"))
        })
    }
    fn encode(v: &Vec<u8>, w: &mut W, tag: &str) {
        use base64::Engine;
        w.leaf(tag, &base64::engine::general_purpose::STANDARD.encode(v));
    }
}

/// A.2.1 arrays, `T[MAX]`: SOAP-encoded, one element per member named by
/// `T`'s type. The size is taken from the elements present, never from
/// `soapenc:arrayType`; more than `MAX` members is not a valid argument.
pub(super) struct Array<T, const MAX: usize = { usize::MAX }>(std::marker::PhantomData<T>);

impl<T: DataType, const MAX: usize> DataType for Array<T, MAX> {
    type Value = Vec<T::Value>;
    const TYPE: &'static str = "soapenc:Array";
    fn decode(n: Node<'_, '_>) -> Result<Vec<T::Value>, Fault> {
        let member = local(T::TYPE);
        let v: Vec<_> = n.children().filter(|c| c.is_element()).collect();
        if let Some(bad) = v.iter().find(|c| c.tag_name().name() != member) {
            return Err(invalid(format!("{} holds {}, expected {member}", n.tag_name().name(), bad.tag_name().name())));
        }
        if v.len() > MAX {
            return Err(invalid(format!("{} holds {} entries, at most {MAX} allowed", n.tag_name().name(), v.len())));
        }
        v.into_iter().map(T::decode).collect()
    }
    fn encode(v: &Vec<T::Value>, w: &mut W, tag: &str) {
        w.open_attrs(tag, &[("soapenc:arrayType", &format!("{}[{}]", T::TYPE, v.len()))]);
        for x in v {
            T::encode(x, w, local(T::TYPE));
        }
        w.close(tag);
    }
}

/// A member the schema lets be left out (Table 48's ExpirationDate).
pub(super) struct Optional<T>(std::marker::PhantomData<T>);

impl<T: DataType> DataType for Optional<T> {
    type Value = Option<T::Value>;
    const TYPE: &'static str = T::TYPE;
    const OPTIONAL: bool = true;
    fn decode(n: Node<'_, '_>) -> Result<Option<T::Value>, Fault> {
        T::decode(n).map(Some)
    }
    fn absent(_: &str) -> Result<Option<T::Value>, Fault> {
        Ok(None)
    }
    fn encode(v: &Option<T::Value>, w: &mut W, tag: &str) {
        if let Some(x) = v {
            T::encode(x, w, tag);
        }
    }
}

/// A.2.2: "All methods must be called using the exact number of arguments
/// specified ... Argument order must be as specified". The element children
/// of `m` that are unqualified or in the CWMP namespace (others are
/// extensions, ignored) must be the `(name, optional)` members in order; an
/// optional one may be left out. One entry per member, `None` where left out.
pub(super) fn args<'a, 'i>(m: Node<'a, 'i>, members: &[(&str, bool)]) -> Result<Vec<Option<Node<'a, 'i>>>, Fault> {
    let got: Vec<Node<'a, 'i>> = m.children().filter(|c| c.is_element() && matches!(c.tag_name().namespace(), None | Some(CWMP))).collect();
    let mut out = Vec::with_capacity(members.len());
    let mut next = got.iter().peekable();
    for &(name, optional) in members {
        match next.peek() {
            Some(n) if n.tag_name().name() == name => out.push(next.next().copied()),
            _ if optional => out.push(None),
            _ => break,
        }
    }
    if out.len() != members.len() || next.next().is_some() {
        let expected: Vec<String> = members.iter().map(|&(n, optional)| if optional { format!("[{n}]") } else { n.to_string() }).collect();
        let found: Vec<&str> = got.iter().map(|c| c.tag_name().name()).collect();
        return Err(invalid(format!("{} expects {:?}, got {:?}", m.tag_name().name(), expected, found)));
    }
    Ok(out)
}

/// One member as matched by [`args`]: its value, or the type's answer for
/// an absent member.
pub(super) fn arg<T: DataType>(n: Option<Node<'_, '_>>, name: &str) -> Result<T::Value, Fault> {
    match n {
        Some(n) => T::decode(n),
        None => T::absent(name),
    }
}

/// A.2.1 dateTime: the SOAP (XML Schema) lexical form
/// `[-]YYYY-MM-DDThh:mm:ss[.s+][Z|(+|-)hh:mm]`. Field ranges are not
/// checked: A.2.1 itself uses `0000-00-02T03:04:05` for time since boot.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let year = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if year < 4 {
        return false;
    }
    i += year;
    // D = digit, anything else literal.
    let fixed = |i: usize, pat: &[u8]| -> bool {
        b.len() >= i + pat.len() && pat.iter().zip(&b[i..]).all(|(p, c)| if *p == b'D' { c.is_ascii_digit() } else { p == c })
    };
    if !fixed(i, b"-DD-DDTDD:DD:DD") {
        return false;
    }
    i += 15;
    if b.get(i) == Some(&b'.') {
        let frac = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return false;
        }
        i += 1 + frac;
    }
    match b.get(i) {
        None => true,
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => fixed(i + 1, b"DD:DD") && i + 6 == b.len(),
        _ => false,
    }
}

/// Declares A.3/A.4 structures (Tables 11-57 "... definition", and the
/// argument lists of Download and Upload), each member written once as
///
/// ```text
/// pub rust_field: RustType => ElementName: DataType,
/// ```
///
/// in the spec's order. Generates the struct, its [`Members`] (read and
/// write the member elements) and, given `as TypeName`, its [`DataType`]:
/// the struct as one element, `cwmp:TypeName` in an array.
macro_rules! cwmp_structs {
    ($(
        $(#[$sm:meta])*
        $svis:vis struct $S:ident $(as $T:ident)? {
            $( $(#[$fm:meta])* $fvis:vis $f:ident : $t:ty => $E:ident : $K:ty ),* $(,)?
        }
    )*) => {$(
        $(#[$sm])*
        $svis struct $S {
            $( $(#[$fm])* $fvis $f: $t, )*
        }

        impl $crate::soap::types::Members for $S {
            fn decode_members(n: ::roxmltree::Node<'_, '_>) -> Result<Self, $crate::soap::Fault> {
                use $crate::soap::types::{arg, args, DataType};
                let mut a = args(n, &[$( (stringify!($E), <$K as DataType>::OPTIONAL) ),*])?.into_iter();
                Ok($S { $( $f: arg::<$K>(a.next().flatten(), stringify!($E))?, )* })
            }
            fn encode_members(&self, w: &mut $crate::soap::xml::W) {
                use $crate::soap::types::DataType;
                $( <$K as DataType>::encode(&self.$f, w, stringify!($E)); )*
            }
        }

        $(
            impl $crate::soap::types::DataType for $S {
                type Value = $S;
                const TYPE: &'static str = concat!("cwmp:", stringify!($T));
                fn decode(n: ::roxmltree::Node<'_, '_>) -> Result<$S, $crate::soap::Fault> {
                    <$S as $crate::soap::types::Members>::decode_members(n)
                }
                fn encode(v: &$S, w: &mut $crate::soap::xml::W, tag: &str) {
                    w.open(tag);
                    $crate::soap::types::Members::encode_members(v, w);
                    w.close(tag);
                }
            }
        )?
    )*};
}
pub(super) use cwmp_structs;

/// Declares the `Body` enum: every CWMP method of A.3 and A.4 and its
/// response, as a variant named after the method's element, with its
/// arguments in the spec's order in one of three shapes:
///
/// ```text
/// Method,                                            // no arguments ("void")
/// Method { rust_field: RustType => ElementName: DataType, ... },
/// Method(ArgsStruct),                                // a cwmp_structs! list
/// ```
///
/// plus the `Fault(Fault)` variant (3.5, A.5) the codec writes as a SOAP
/// Fault. Generates `method()` (the element name), and the decoding and
/// encoding of each method's arguments.
macro_rules! cwmp_messages {
    (@decode $Body:ident $m:ident $V:ident) => {{
        $crate::soap::types::args($m, &[])?;
        $Body::$V
    }};
    (@decode $Body:ident $m:ident $V:ident { $( $f:ident $E:ident $K:ty ),* }) => {{
        use $crate::soap::types::{arg, args, DataType};
        let mut a = args($m, &[$( (stringify!($E), <$K as DataType>::OPTIONAL) ),*])?.into_iter();
        $Body::$V { $( $f: arg::<$K>(a.next().flatten(), stringify!($E))?, )* }
    }};
    (@decode $Body:ident $m:ident $V:ident ( $A:ty )) => {
        $Body::$V(<$A as $crate::soap::types::Members>::decode_members($m)?)
    };
    (@encode $Body:ident $b:ident $w:ident $V:ident) => {{}};
    (@encode $Body:ident $b:ident $w:ident $V:ident { $( $f:ident $E:ident $K:ty ),* }) => {
        if let $Body::$V { $( $f ),* } = $b {
            $( <$K as $crate::soap::types::DataType>::encode($f, $w, stringify!($E)); )*
        }
    };
    (@encode $Body:ident $b:ident $w:ident $V:ident ( $A:ty )) => {
        if let $Body::$V(a) = $b {
            $crate::soap::types::Members::encode_members(a, $w);
        }
    };
    (
        $(#[$em:meta])*
        pub enum $Body:ident {
            $(
                $(#[$vm:meta])*
                $V:ident
                $( { $( $(#[$fm:meta])* $f:ident : $t:ty => $E:ident : $K:ty ),* $(,)? } )?
                $( ( $A:ty ) )?
            ),* $(,)?
        }
    ) => {
        $(#[$em])*
        pub enum $Body {
            $(
                $(#[$vm])*
                $V $( { $( $(#[$fm])* $f: $t ),* } )? $( ( $A ) )?,
            )*
            /// A SOAP Fault with its `cwmp:Fault` detail (3.5, A.5), in
            /// either direction.
            Fault($crate::soap::Fault),
        }

        impl $Body {
            /// The element name in the body.
            pub fn method(&self) -> &'static str {
                match self {
                    $( $Body::$V { .. } => stringify!($V), )*
                    $Body::Fault(_) => "Fault",
                }
            }

            /// The message whose element is `m` (in the CWMP namespace),
            /// from its arguments; 9000 for an unknown method, 9003 for
            /// arguments that are not the method's.
            pub(super) fn decode_arguments(m: ::roxmltree::Node<'_, '_>) -> Result<$Body, $crate::soap::Fault> {
                Ok(match m.tag_name().name() {
                    $( stringify!($V) => $crate::soap::types::cwmp_messages!(@decode $Body m $V $( { $( $f $E $K ),* } )? $( ( $A ) )?), )*
                    other => return Err($crate::soap::Fault::new(9000, format!("Method not supported: {other}"))),
                })
            }

            /// The argument elements of the message (inside its method
            /// element); nothing for a Fault, which is not a method.
            pub(super) fn encode_arguments(&self, w: &mut $crate::soap::xml::W) {
                let body = self;
                match body {
                    $( $Body::$V { .. } => $crate::soap::types::cwmp_messages!(@encode $Body body w $V $( { $( $f $E $K ),* } )? $( ( $A ) )?), )*
                    $Body::Fault(_) => {}
                }
            }
        }
    };
}
pub(super) use cwmp_messages;
