//! `roomcast sse decode` and `roomcast sse encode`: the SSE codec of roomcast-core on stdin and
//! stdout, so that other implementations and test suites can check it byte for byte.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use clap::Subcommand;
use roomcast_core::sse::{DecodeError, Decoder, DecoderLimits, Fields, encode_comment};
use serde::{Deserialize, Serialize};

#[derive(Subcommand)]
pub(crate) enum SseCommand {
    /// Read a raw event stream on stdin; print each dispatched event as a JSON line
    /// {"type", "data", "id", "retry"}, then {"end": {"last_event_id", "retry"}} at end of input.
    ///
    /// "id" is the last event id after the event; "retry" the reconnection time in ms, or null
    /// while no retry field has set one. Exits non-zero, with a message on stderr, when the
    /// stream breaks a size limit.
    Decode {
        /// Feed the decoder N bytes at a time (default: each read as it comes).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        chunk: Option<u64>,
        /// Start as a reconnecting client does, with this last event id.
        #[arg(long, value_name = "ID")]
        last_event_id: Option<String>,
        /// Longest line accepted, in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = DecoderLimits::default().max_line)]
        max_line: usize,
        /// Largest event accepted (data plus event type), in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = DecoderLimits::default().max_event)]
        max_event: usize,
    },
    /// Read JSON lines on stdin, each {"data"?, "type"?, "id"?, "retry"?} or {"comment"}; write
    /// the event stream bytes to stdout.
    ///
    /// A block without "data" writes no data line (an id-only or retry-only block). An id with
    /// CR, LF or NUL, or a type with CR or LF, is refused: no field can inject another.
    Encode,
}

pub(crate) fn run(command: SseCommand) -> Result<(), CliError> {
    let stdin = io::stdin().lock();
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    match command {
        SseCommand::Decode {
            chunk,
            last_event_id,
            max_line,
            max_event,
        } => {
            let mut decoder = Decoder::with_limits(DecoderLimits {
                max_line,
                max_event,
            });
            if let Some(id) = last_event_id {
                decoder = decoder.with_last_event_id(&id);
            }
            let chunk = chunk.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            decode(stdin, &mut stdout, decoder, chunk)
        }
        SseCommand::Encode => encode(stdin, &mut stdout),
    }
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    Io(io::Error),
    Limit(DecodeError),
    Input { line: usize, message: String },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "{error}"),
            Self::Limit(error) => write!(f, "{error}"),
            Self::Input { line, message } => write!(f, "line {line}: {message}"),
        }
    }
}

impl From<io::Error> for CliError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

#[derive(Serialize)]
struct EventLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a str,
    id: &'a str,
    retry: Option<u64>,
}

#[derive(Serialize)]
struct EndLine<'a> {
    end: End<'a>,
}

#[derive(Serialize)]
struct End<'a> {
    last_event_id: &'a str,
    retry: Option<u64>,
}

fn decode(
    mut input: impl Read,
    out: &mut impl Write,
    mut decoder: Decoder,
    chunk: Option<usize>,
) -> Result<(), CliError> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.into()),
        };
        let read = &buf[..n];
        let result = match chunk {
            Some(size) => read
                .chunks(size)
                .try_for_each(|piece| feed(&mut decoder, piece, out)),
            None => feed(&mut decoder, read, out),
        };
        // Whatever was dispatched before a failure is still printed.
        out.flush()?;
        result?;
    }
    decoder.finish();
    let end = EndLine {
        end: End {
            last_event_id: decoder.last_event_id(),
            retry: decoder.retry(),
        },
    };
    write_json(out, &end)?;
    out.flush()?;
    Ok(())
}

fn feed(decoder: &mut Decoder, mut piece: &[u8], out: &mut impl Write) -> Result<(), CliError> {
    // The event borrows the decoder: copy it out to read the state it leaves behind.
    while let Some(event) = decoder.decode(&mut piece).map_err(CliError::Limit)? {
        let event = event.into_owned();
        let line = EventLine {
            kind: &event.event,
            data: &event.data,
            id: &event.id,
            retry: decoder.retry(),
        };
        write_json(out, &line)?;
    }
    Ok(())
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// One line of `encode`'s input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodeLine {
    data: Option<String>,
    #[serde(rename = "type")]
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    comment: Option<String>,
}

fn encode(input: impl BufRead, out: &mut impl Write) -> Result<(), CliError> {
    let mut bytes = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| CliError::Input {
            line: number,
            message,
        };
        let item: EncodeLine = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        bytes.clear();
        match item {
            EncodeLine {
                comment: Some(text),
                data: None,
                event: None,
                id: None,
                retry: None,
            } => {
                encode_comment(&mut bytes, &text);
            }
            EncodeLine {
                comment: Some(_), ..
            } => {
                return Err(bad("a comment line takes no other field".into()));
            }
            EncodeLine {
                data,
                event,
                id,
                retry,
                comment: None,
            } => {
                let fields = Fields {
                    id: id.as_deref(),
                    event: event.as_deref(),
                    data: data.as_deref(),
                    retry,
                };
                fields.encode(&mut bytes).map_err(|e| bad(e.to_string()))?;
            }
        }
        out.write_all(&bytes)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_text(input: &[u8], chunk: Option<usize>) -> (String, Result<(), CliError>) {
        let mut out = Vec::new();
        let result = decode(input, &mut out, Decoder::new(), chunk);
        (String::from_utf8(out).expect("UTF-8 output"), result)
    }

    #[test]
    fn decode_prints_each_event_then_the_end() {
        let (out, result) = decode_text(
            b"retry: 5\ndata: a\n\nid: 7\nevent: e\ndata: b\n\ndata: pending\n",
            None,
        );
        assert!(result.is_ok());
        assert_eq!(
            out,
            concat!(
                r#"{"type":"message","data":"a","id":"","retry":5}"#,
                "\n",
                r#"{"type":"e","data":"b","id":"7","retry":5}"#,
                "\n",
                r#"{"end":{"last_event_id":"7","retry":5}}"#,
                "\n",
            )
        );
    }

    #[test]
    fn decode_reports_retry_as_of_each_event() {
        let (out, _) = decode_text(b"data: a\n\nretry: 9\ndata: b\n\n", Some(1));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"type":"message","data":"a","id":"","retry":null}"#
        );
        assert_eq!(
            lines[1],
            r#"{"type":"message","data":"b","id":"","retry":9}"#
        );
    }

    #[test]
    fn decode_output_does_not_depend_on_chunking() {
        let input =
            b"\xEF\xBB\xBFid: 1\r\ndata: x\r\rdata: \xFF\n\n: c\nretry: 3\nevent: t\ndata\n\n";
        let (whole, _) = decode_text(input, None);
        for size in 1..input.len() {
            assert_eq!(decode_text(input, Some(size)).0, whole, "chunk {size}");
        }
    }

    #[test]
    fn decode_stops_with_an_error_past_a_limit() {
        let mut out = Vec::new();
        let limits = DecoderLimits {
            max_line: 8,
            max_event: 64,
        };
        let result = decode(
            &b"data: ok\n\ndata: far too long\n\n"[..],
            &mut out,
            Decoder::with_limits(limits),
            None,
        );
        assert!(matches!(
            result,
            Err(CliError::Limit(DecodeError::LineTooLong { limit: 8 }))
        ));
        // The event before the breach was still printed.
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "{\"type\":\"message\",\"data\":\"ok\",\"id\":\"\",\"retry\":null}\n"
        );
    }

    fn encode_text(input: &str) -> Result<String, CliError> {
        let mut out = Vec::new();
        encode(input.as_bytes(), &mut out).map(|()| String::from_utf8(out).expect("UTF-8"))
    }

    #[test]
    fn encode_writes_blocks_and_comments() {
        let input = "{\"data\":\"a\\nb\",\"type\":\"t\",\"id\":\"1\",\"retry\":5}\n\n{\"comment\":\"hi\"}\n{\"id\":\"2\"}\n";
        assert_eq!(
            encode_text(input).expect("valid"),
            "id: 1\nevent: t\nretry: 5\ndata: a\ndata: b\n\n: hi\nid: 2\n\n"
        );
    }

    #[test]
    fn encode_refuses_bad_lines_with_their_number() {
        for (input, expected) in [
            (
                "{\"data\":\"x\"}\n{\"id\":\"a\\nb\"}",
                "line 2: an SSE id cannot contain CR, LF or NUL",
            ),
            (
                "{\"type\":\"a\\rb\"}",
                "line 1: an SSE event type cannot contain CR or LF",
            ),
            (
                "{\"comment\":\"c\",\"data\":\"x\"}",
                "line 1: a comment line takes no other field",
            ),
            (
                "{\"retry\":-1}",
                "line 1: invalid value: integer `-1`, expected u64 at line 1 column 11",
            ),
            (
                "{\"dta\":\"x\"}",
                "line 1: unknown field `dta`, expected one of `data`, `type`, `id`, `retry`, `comment` at line 1 column 6",
            ),
            ("not json", "line 1: expected ident at line 1 column 2"),
        ] {
            let error = encode_text(input).expect_err("refused");
            assert_eq!(error.to_string(), expected, "{input}");
        }
    }
}
