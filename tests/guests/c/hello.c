/* Boson test guest (C): responds 200 `Hello from C!` (wasi:http/incoming-handler@0.2.12).
 * Built with -DHELLO_WASI_HTTP_0_2_0 against the WASI 0.2.0 WIT (the generated names are the
 * same) it is c/hello-0.2.0.wasm and responds `Hello from C (wasi:http 0.2.0)!`. */
#include <string.h>

#include "proxy_app.h"

#ifdef HELLO_WASI_HTTP_0_2_0
static const char BODY[] = "Hello from C (wasi:http 0.2.0)!\n";
#else
static const char BODY[] = "Hello from C!\n";
#endif

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
    wasi_http_types_incoming_request_drop_own(request);

    wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
    proxy_app_string_t name;
    proxy_app_string_set(&name, "content-type");
    wasi_http_types_field_value_t value = {(uint8_t *)"text/plain", strlen("text/plain")};
    wasi_http_types_header_error_t herr;
    wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &name, &value, &herr);

    wasi_http_types_own_outgoing_response_t response =
        wasi_http_types_constructor_outgoing_response(headers);
    wasi_http_types_method_outgoing_response_set_status_code(
        wasi_http_types_borrow_outgoing_response(response), 200);

    wasi_http_types_own_outgoing_body_t body;
    wasi_http_types_method_outgoing_response_body(
        wasi_http_types_borrow_outgoing_response(response), &body);

    wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false};
    result.val.ok = response;
    wasi_http_types_static_response_outparam_set(response_out, &result);

    wasi_io_streams_own_output_stream_t stream;
    wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
    proxy_app_list_u8_t bytes = {(uint8_t *)BODY, sizeof(BODY) - 1};
    wasi_io_streams_stream_error_t serr;
    wasi_io_streams_method_output_stream_blocking_write_and_flush(
        wasi_io_streams_borrow_output_stream(stream), &bytes, &serr);
    wasi_io_streams_output_stream_drop_own(stream);

    wasi_http_types_error_code_t ferr;
    wasi_http_types_static_outgoing_body_finish(body, NULL, &ferr);
}
