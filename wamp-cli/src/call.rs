//! `call PROC [ARG...]`: one CALL, its result on stdout as JSON.

use serde_json::Value;
use tracing::debug;

use crate::args::json_or_string;
use crate::cli::CallArgs;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output;

/// Runs `call`.
pub async fn run(conn: &Connection, args: CallArgs) -> Result<(), Failure> {
    let call_args: Vec<Value> = args
        .args
        .iter()
        .map(|a| {
            if args.string {
                Value::String(a.clone())
            } else {
                json_or_string(a)
            }
        })
        .collect();
    let client = conn.connect().await?;
    debug!(procedure = %args.procedure, args = ?call_args, "CALL");
    let answer = client.call(&args.procedure, call_args).await;
    client.close().await;
    let result =
        answer.map_err(|e| Failure::operation(&format!("call to {}", args.procedure), e))?;
    debug!(%result, "CALLRESULT");
    output::line(&render(&result, args.raw, args.pretty)?);
    Ok(())
}

/// The result as printed: JSON (pretty with `--pretty`), or with `--raw` a string result as
/// its bare text.
fn render(result: &Value, raw: bool, pretty: bool) -> Result<String, Failure> {
    match result {
        Value::String(text) if raw => Ok(text.clone()),
        _ if pretty => serde_json::to_string_pretty(result),
        _ => serde_json::to_string(result),
    }
    .map_err(|e| Failure::other(format!("cannot print the result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_prints_strings_bare_and_the_rest_as_json() {
        assert_eq!(render(&json!("a \"b\""), true, false).unwrap(), "a \"b\"");
        assert_eq!(render(&json!("a"), false, false).unwrap(), "\"a\"");
        assert_eq!(render(&json!(6.5), true, false).unwrap(), "6.5");
        assert_eq!(
            render(&json!({"a": 1}), true, true).unwrap(),
            "{\n  \"a\": 1\n}"
        );
        assert_eq!(render(&Value::Null, true, false).unwrap(), "null");
    }
}
