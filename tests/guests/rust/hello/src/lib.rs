//! Boson test guest (Rust): responds 200 `Hello from Rust!` (wasi:http/incoming-handler@0.2.x).

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Handler;

impl wasi::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        drop(request);
        let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
            .expect("valid header");
        let response = OutgoingResponse::new(headers);
        response.set_status_code(200).expect("valid status");
        let body = response.body().expect("body taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("stream taken once");
        stream
            .blocking_write_and_flush(b"Hello from Rust!\n")
            .expect("write body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}

wasi::http::proxy::export!(Handler);
