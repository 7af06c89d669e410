//! The device id rule, shared by the host tool (before anything is written) and the firmware.

/// Longest id: 63 bytes, so `devices/<id>/...` stays short and the CN fits comfortably.
pub const MAX_LEN: usize = 63;

/// Why an id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_LEN`] bytes.
    TooLong { len: usize },
    /// The first character must be `a-z` or `0-9`.
    BadFirst { ch: char },
    /// A character outside `a-z`, `0-9`, `-` at byte `index`.
    BadChar { ch: char, index: usize },
}

impl core::fmt::Display for IdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IdError::Empty => write!(f, "device id is empty"),
            IdError::TooLong { len } => {
                write!(
                    f,
                    "device id is {len} bytes long; at most {MAX_LEN} are allowed"
                )
            }
            IdError::BadFirst { ch } => {
                // escape_default rather than {:?}: Debug on a char pulls Unicode tables (~900
                // bytes of RAM) into the ESP8266 image.
                write!(
                    f,
                    "device id must start with a-z or 0-9, not '{}'",
                    ch.escape_default()
                )
            }
            IdError::BadChar { ch, index } => write!(
                f,
                "device id has '{}' at position {index}; only a-z, 0-9 and '-' are allowed",
                ch.escape_default()
            ),
        }
    }
}

impl core::error::Error for IdError {}

/// Checks `id` against `[a-z0-9][a-z0-9-]{0,62}`.
pub fn validate(id: &str) -> Result<(), IdError> {
    let mut chars = id.char_indices();
    let Some((_, first)) = chars.next() else {
        return Err(IdError::Empty);
    };
    if id.len() > MAX_LEN {
        return Err(IdError::TooLong { len: id.len() });
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(IdError::BadFirst { ch: first });
    }
    for (index, ch) in chars {
        if !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
            return Err(IdError::BadChar { ch, index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for id in ["a", "0", "kitchen-sensor-1", "9-x", &"a".repeat(63)] {
            assert_eq!(validate(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(validate(""), Err(IdError::Empty));
        assert_eq!(validate(&"a".repeat(64)), Err(IdError::TooLong { len: 64 }));
        assert_eq!(validate("-a"), Err(IdError::BadFirst { ch: '-' }));
        assert_eq!(validate("Kitchen"), Err(IdError::BadFirst { ch: 'K' }));
        for (id, ch, index) in [
            ("a+", '+', 1),
            ("a#", '#', 1),
            ("a/b", '/', 1),
            ("a$b", '$', 1),
            ("aB", 'B', 1),
            ("a b", ' ', 1),
            ("a_b", '_', 1),
            ("aé", 'é', 1),
        ] {
            assert_eq!(validate(id), Err(IdError::BadChar { ch, index }), "{id}");
        }
        assert_eq!(validate("$SYS"), Err(IdError::BadFirst { ch: '$' }));
    }
}
