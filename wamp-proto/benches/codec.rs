//! Parse and serialise of small CALL and EVENT frames.
//!
//! Run with: `cargo bench -p wamp-proto --bench codec`

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use wamp_proto::Message;

const CALL: &str = r#"[2,"0.arg98rkv3aowp14i","http://wamptutorial/rpc#echo","test"]"#;
const EVENT: &str =
    r#"[8,"http://wamptutorial/event#chat",{"user":"guest","text":"hello, world","n":42}]"#;

fn codec(c: &mut Criterion) {
    for (name, frame) in [("call", CALL), ("event", EVENT)] {
        let msg = Message::from_json(frame).unwrap();
        c.bench_function(&format!("parse_{name}"), |b| {
            b.iter(|| Message::from_json(black_box(frame)).unwrap())
        });
        c.bench_function(&format!("parse_via_value_{name}"), |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_str(black_box(frame)).unwrap();
                Message::from_value(v).unwrap()
            })
        });
        c.bench_function(&format!("serialise_{name}"), |b| {
            b.iter(|| black_box(&msg).to_json())
        });
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
