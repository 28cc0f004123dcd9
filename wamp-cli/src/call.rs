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
    let text = if args.pretty {
        serde_json::to_string_pretty(&result)
    } else {
        serde_json::to_string(&result)
    }
    .map_err(|e| Failure::other(format!("cannot print the result: {e}")))?;
    output::line(&text);
    Ok(())
}
