//! redis-rs values and errors as the plan reads replies.

use crate::plan::Reply;

/// A redis-rs value as the plan reads replies.
pub fn reply(value: redis::Value) -> Reply {
    match value {
        redis::Value::Nil => Reply::Nil,
        redis::Value::Int(n) => Reply::Int(n),
        redis::Value::BulkString(bytes) => Reply::Data(bytes),
        redis::Value::SimpleString(text) => Reply::Data(text.into_bytes()),
        redis::Value::Okay => Reply::Data(b"OK".to_vec()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            Reply::Array(items.into_iter().map(reply).collect())
        }
        redis::Value::ServerError(error) => Reply::Error(match error.details() {
            Some(details) => format!("{} {details}", error.code()),
            None => error.code().to_owned(),
        }),
        other => Reply::Error(format!("an unexpected reply: {other:?}")),
    }
}

/// A redis-rs error of one call as an error reply: its code (the first word) and the rest.
pub fn error_reply(error: &redis::RedisError) -> Reply {
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => Reply::Error(format!("{code} {detail}")),
        (Some(code), None) => Reply::Error(code.to_owned()),
        _ => Reply::Error(error.to_string()),
    }
}
