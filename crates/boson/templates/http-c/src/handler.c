/* An HTTP handler in C: one call of `exports_wasi_http_incoming_handler_handle` per request.
 * The types and functions come from `gen/http_handler.h`, which `wit-bindgen c` generates from
 * the WIT in wit/ on every `boson build`. */
#include <stdio.h>
#include <string.h>

#include "http_handler.h"

/* Sends a complete response: status, one content-type header, and the body. */
static void respond(exports_wasi_http_incoming_handler_own_response_outparam_t response_out,
                    uint16_t status, const char *content_type, const char *text, size_t len) {
    wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
    http_handler_string_t name;
    http_handler_string_set(&name, "content-type");
    wasi_http_types_field_value_t value = {(uint8_t *)content_type, strlen(content_type)};
    wasi_http_types_header_error_t header_error;
    wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &name, &value,
                                         &header_error);

    wasi_http_types_own_outgoing_response_t response =
        wasi_http_types_constructor_outgoing_response(headers);
    wasi_http_types_method_outgoing_response_set_status_code(
        wasi_http_types_borrow_outgoing_response(response), status);
    wasi_http_types_own_outgoing_body_t body;
    wasi_http_types_method_outgoing_response_body(
        wasi_http_types_borrow_outgoing_response(response), &body);

    wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false};
    result.val.ok = response;
    wasi_http_types_static_response_outparam_set(response_out, &result);

    wasi_io_streams_own_output_stream_t stream;
    wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
    /* blocking_write_and_flush takes at most 4096 bytes per call */
    for (size_t done = 0; done < len;) {
        size_t chunk = len - done < 4096 ? len - done : 4096;
        http_handler_list_u8_t bytes = {(uint8_t *)text + done, chunk};
        wasi_io_streams_stream_error_t stream_error;
        if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(
                wasi_io_streams_borrow_output_stream(stream), &bytes, &stream_error)) {
            break; /* the client went away */
        }
        done += chunk;
    }
    wasi_io_streams_output_stream_drop_own(stream);
    wasi_http_types_error_code_t finish_error;
    wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_error);
}

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
    http_handler_string_t path = {0};
    wasi_http_types_method_incoming_request_path_with_query(
        wasi_http_types_borrow_incoming_request(request), &path);

    char text[512];
    int len = snprintf(text, sizeof text, "Hello from C! You asked for %.*s\n", (int)path.len,
                       path.len ? (const char *)path.ptr : "/");
    http_handler_string_free(&path);
    wasi_http_types_incoming_request_drop_own(request);

    respond(response_out, 200, "text/plain", text, len < (int)sizeof text ? (size_t)len : sizeof text - 1);
}
