use bytes::Bytes;
use faas_macros::function;

#[function]
async fn crowded(
    _a: Bytes,
    _b: Bytes,
    _c: Bytes,
    _d: Bytes,
    _e: Bytes,
    _f: Bytes,
    _g: Bytes,
    _h: Bytes,
    _i: Bytes,
) {
}

fn main() {}
