//! Reading cache access traces.
//!
//! Formats (see `../shared/traces/README.md`); compression is detected from
//! the file's magic bytes (gzip, xz, or none), so a format names only the
//! record layout:
//!
//! | format | record |
//! |---|---|
//! | `lirs` | text, one decimal key per line; empty lines and `*` skipped |
//! | `cache2k` | big-endian signed 32-bit keys |
//! | `corda`, `scarab` | big-endian signed 64-bit keys |
//! | `cloud_physics` | big-endian unsigned 32-bit keys |
//! | `address` | text, `X 0xHEX ...`: the key is the second field |
//! | `adapt_size` | text, `tick key size`: the object is (key, size), weight `size` |
//!
//! A record that cannot be parsed is an error naming the file and the line
//! (text) or byte offset (binary); nothing is skipped silently.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The record layout of a trace file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum Format {
    Lirs,
    Cache2k,
    Corda,
    Address,
    Scarab,
    CloudPhysics,
    AdaptSize,
}

/// A trace in memory: one key per access, and per-access weights when the
/// format has sizes.
#[derive(Debug)]
pub(crate) struct Trace {
    pub(crate) name: String,
    pub(crate) keys: Vec<u64>,
    /// `Some` for weighted formats (`adapt_size`): the weight of each access.
    pub(crate) weights: Option<Vec<u32>>,
}

impl Trace {
    pub(crate) fn distinct(&self) -> usize {
        let mut seen = hashbrown::HashSet::with_capacity(self.keys.len() / 4);
        self.keys.iter().filter(|k| seen.insert(**k)).count()
    }
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TraceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: byte offset {offset} of the decompressed data: {message}")]
    Offset {
        path: PathBuf,
        offset: usize,
        message: String,
    },
    #[error("{path}: the trace has no accesses")]
    Empty { path: PathBuf },
    #[error(
        "{path}: {compression}-compressed traces are not supported (gzip, xz or uncompressed)"
    )]
    Compression {
        path: PathBuf,
        compression: &'static str,
    },
}

/// Magic bytes of compressions this reader does not decode. Without this
/// check their bytes would be read as raw records: garbage keys for a
/// binary format whenever the length happens to be a multiple of the
/// record width.
const UNSUPPORTED_COMPRESSIONS: [(&[u8], &str); 5] = [
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    (b"BZh", "bzip2"),
    (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
    (b"PK\x03\x04", "zip"),
    (&[0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], "7z"),
];

/// How much of an unparsable line an error message quotes: enough to
/// recognise it, without echoing a whole file that has no line breaks.
const QUOTED_CHARS: usize = 60;

/// `text` quoted for an error message, cut to `QUOTED_CHARS` characters.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

/// Why a number field did not parse: out of range, or not a number.
fn number_error(e: &std::num::ParseIntError, expected: &str, field: &str) -> String {
    use std::num::IntErrorKind;
    match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            format!("{} is out of range for {expected}", quoted(field))
        }
        _ => format!("expected {expected}, found {}", quoted(field)),
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// Reads and decompresses `path` whole.
fn read_bytes(path: &Path) -> Result<Vec<u8>, TraceError> {
    let io = |source| TraceError::Io {
        path: path.to_owned(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if let Some(&(_, compression)) = UNSUPPORTED_COMPRESSIONS
        .iter()
        .find(|(magic, _)| raw.starts_with(magic))
    {
        return Err(TraceError::Compression {
            path: path.to_owned(),
            compression,
        });
    }
    let mut out = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
    } else if raw.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        xz2::read::XzDecoder::new_multi_decoder(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
    } else {
        out = raw;
    }
    Ok(out)
}

/// Reads a trace file.
pub(crate) fn load(path: &Path, format: Format) -> Result<Trace, TraceError> {
    let bytes = read_bytes(path)?;
    let mut trace = parse(path, format, &bytes)?;
    trace.name = path.display().to_string();
    if trace.keys.is_empty() {
        return Err(TraceError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(trace)
}

/// Parses decompressed trace bytes; `path` only names errors.
pub(crate) fn parse(path: &Path, format: Format, bytes: &[u8]) -> Result<Trace, TraceError> {
    let mut weights = None;
    let keys = match format {
        Format::Cache2k => binary(path, bytes, 4, |b| {
            i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64
        })?,
        Format::CloudPhysics => binary(path, bytes, 4, |b| {
            u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        })?,
        Format::Corda | Format::Scarab => binary(path, bytes, 8, |b| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            i64::from_be_bytes(w) as u64
        })?,
        Format::Lirs => text(path, bytes, |line| {
            let line = line.trim();
            if line.is_empty() || line == "*" {
                return Ok(None);
            }
            line.parse::<i64>()
                .map(|k| Some(k as u64))
                .map_err(|e| number_error(&e, "a decimal key (64-bit signed)", line))
        })?,
        Format::Address => text(path, bytes, |line| {
            if line.trim().is_empty() {
                return Ok(None);
            }
            let field = line
                .split_whitespace()
                .nth(1)
                .ok_or_else(|| format!("expected `X 0xHEX ...`, found {}", quoted(line)))?;
            let hex = field
                .strip_prefix("0x")
                .or_else(|| field.strip_prefix("0X"))
                .unwrap_or(field);
            u64::from_str_radix(hex, 16)
                .map(Some)
                .map_err(|e| number_error(&e, "a hexadecimal address (64-bit)", field))
        })?,
        Format::AdaptSize => {
            // Objects are (key, size) pairs; number them densely.
            let mut ids: HashMap<(u64, u32), u64> = HashMap::new();
            let mut sizes = Vec::new();
            let keys = text(path, bytes, |line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.is_empty() {
                    return Ok(None);
                }
                let [_tick, key, size] = fields[..] else {
                    return Err(format!("expected `tick key size`, found {}", quoted(line)));
                };
                let key: u64 = key
                    .parse()
                    .map_err(|e| number_error(&e, "a decimal key (64-bit unsigned)", key))?;
                let size: u32 = size
                    .parse()
                    .map_err(|e| number_error(&e, "a size (32-bit unsigned)", size))?;
                let next = ids.len() as u64;
                let id = *ids.entry((key, size)).or_insert(next);
                sizes.push(size);
                Ok(Some(id))
            })?;
            weights = Some(sizes);
            keys
        }
    };
    Ok(Trace {
        name: path.display().to_string(),
        keys,
        weights,
    })
}

fn binary(
    path: &Path,
    bytes: &[u8],
    width: usize,
    key: impl Fn(&[u8]) -> u64,
) -> Result<Vec<u64>, TraceError> {
    if bytes.len() % width != 0 {
        return Err(TraceError::Offset {
            path: path.to_owned(),
            offset: bytes.len() - bytes.len() % width,
            message: format!(
                "truncated record: {} trailing bytes, records are {width} bytes",
                bytes.len() % width
            ),
        });
    }
    Ok(bytes.chunks_exact(width).map(key).collect())
}

fn text(
    path: &Path,
    bytes: &[u8],
    mut parse_line: impl FnMut(&str) -> Result<Option<u64>, String>,
) -> Result<Vec<u64>, TraceError> {
    let mut keys = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let err = |message| TraceError::Line {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let line = std::str::from_utf8(line).map_err(|_| err("not valid UTF-8".into()))?;
        if let Some(key) = parse_line(line.trim_end_matches('\r')).map_err(err)? {
            keys.push(key);
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(format: Format, bytes: &[u8]) -> Result<Trace, TraceError> {
        parse(Path::new("t"), format, bytes)
    }

    #[test]
    fn lirs_skips_blank_and_star_lines() {
        let t = p(Format::Lirs, b"1\n\n*\n2\r\n3").unwrap();
        assert_eq!(t.keys, vec![1, 2, 3]);
    }

    #[test]
    fn lirs_names_the_bad_line() {
        let e = p(Format::Lirs, b"1\n2\nabc\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "t: line 3: expected a decimal key (64-bit signed), found \"abc\""
        );
    }

    #[test]
    fn out_of_range_numbers_say_so() {
        let e = p(Format::Lirs, b"99999999999999999999\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is out of range for a decimal key"), "{e}");
        let e = p(Format::Address, b"R 0x1ffffffffffffffff\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range for a hexadecimal address"), "{e}");
        let e = p(Format::AdaptSize, b"1 2 4294967296\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range for a size"), "{e}");
    }

    #[test]
    fn long_bad_lines_are_quoted_in_part() {
        let line = "x".repeat(10_000);
        let e = p(Format::Lirs, line.as_bytes()).unwrap_err().to_string();
        assert!(e.len() < 200, "{} bytes: {e}", e.len());
        assert!(e.ends_with("\"..."), "{e}");
    }

    #[test]
    fn binary_formats_are_big_endian_and_reject_partial_records() {
        let t = p(Format::Cache2k, &[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(t.keys, vec![5, (-1i32) as u64]);
        let t = p(Format::CloudPhysics, &[0xff, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(t.keys, vec![u64::from(u32::MAX)]);
        let t = p(Format::Corda, &[0, 0, 0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!(t.keys, vec![256]);
        let e = p(Format::Scarab, &[0; 12]).unwrap_err().to_string();
        assert!(
            e.starts_with("t: byte offset 8 of the decompressed data: truncated record"),
            "{e}"
        );
    }

    #[test]
    fn address_takes_the_second_field() {
        let t = p(Format::Address, b"R 0x1f 3\nW 0XfF\n").unwrap();
        assert_eq!(t.keys, vec![0x1f, 0xff]);
        let e = p(Format::Address, b"R 0x1\nR\n").unwrap_err().to_string();
        assert!(e.starts_with("t: line 2:"), "{e}");
        let e = p(Format::Address, b"R 0xzz\n").unwrap_err().to_string();
        assert!(e.contains("hexadecimal"), "{e}");
    }

    #[test]
    fn adapt_size_objects_are_key_size_pairs() {
        let t = p(Format::AdaptSize, b"1 7 100\n2 7 100\n3 7 200\n").unwrap();
        assert_eq!(t.keys, vec![0, 0, 1]);
        assert_eq!(t.weights, Some(vec![100, 100, 200]));
        let e = p(Format::AdaptSize, b"1 7\n").unwrap_err().to_string();
        assert!(e.starts_with("t: line 1: expected `tick key size`"), "{e}");
    }

    #[test]
    fn compressed_files_are_detected() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("a.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"4\n5\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(load(&gz, Format::Lirs).unwrap().keys, vec![4, 5]);
        let xz = dir.path().join("a.xz");
        let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(&[0, 0, 0, 9]).unwrap();
        std::fs::write(&xz, enc.finish().unwrap()).unwrap();
        assert_eq!(load(&xz, Format::Cache2k).unwrap().keys, vec![9]);
        let empty = dir.path().join("e");
        std::fs::write(&empty, b"\n").unwrap();
        assert!(matches!(
            load(&empty, Format::Lirs),
            Err(TraceError::Empty { .. })
        ));
    }

    #[test]
    fn other_compressions_are_refused_not_read_as_records() {
        let dir = tempfile::tempdir().unwrap();
        for (magic, name) in UNSUPPORTED_COMPRESSIONS {
            let file = dir.path().join(name);
            // A multiple of the record width, which a raw read would accept.
            let mut bytes = magic.to_vec();
            bytes.resize(16, 0);
            std::fs::write(&file, &bytes).unwrap();
            let e = load(&file, Format::Cache2k).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{name}-compressed traces are not supported")),
                "{e}"
            );
        }
    }
}
