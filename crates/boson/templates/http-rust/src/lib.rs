//! An HTTP handler in Rust: `Handler::handle` runs once per request. It implements the standard
//! `wasi:http/incoming-handler` interface (through the `wasi` crate), so the component also runs
//! on Spin and under `wasmtime serve`.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Handler;

impl wasi::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let text = format!("Hello from Rust! You asked for {path}\n");
        respond(response_out, 200, "text/plain", text.as_bytes());
    }
}

/// Sends a complete response: status, one content-type header, and the body.
fn respond(response_out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers = Fields::from_list(&[("content-type".to_string(), content_type.into())])
        .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("the body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let stream = outgoing.write().expect("the stream is taken once");
    // blocking-write-and-flush takes at most 4096 bytes per call
    for chunk in body.chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            break; // the client went away
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

wasi::http::proxy::export!(Handler);
