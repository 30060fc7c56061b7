//! An HTTP handler in Zig: `exports_wasi_http_incoming_handler_handle` runs once per request.
//! `bindings.zig` is generated on every `boson build` (`wit-bindgen c`, then `zig translate-c`)
//! from the WIT in wit/: the standard wasi:http interfaces, as C functions and types.

const std = @import("std");
const c = @import("bindings.zig");

const Request = c.exports_wasi_http_incoming_handler_own_incoming_request_t;
const ResponseOut = c.exports_wasi_http_incoming_handler_own_response_outparam_t;

export fn exports_wasi_http_incoming_handler_handle(request: Request, response_out: ResponseOut) void {
    var path: c.http_handler_string_t = .{ .ptr = null, .len = 0 };
    _ = c.wasi_http_types_method_incoming_request_path_with_query(
        c.wasi_http_types_borrow_incoming_request(request),
        &path,
    );
    defer c.http_handler_string_free(&path);
    c.wasi_http_types_incoming_request_drop_own(request);
    const asked: []const u8 = if (path.len > 0) path.ptr[0..path.len] else "/";

    var buf: [512]u8 = undefined;
    const text = std.fmt.bufPrint(&buf, "Hello from Zig! You asked for {s}\n", .{asked}) catch "Hello from Zig!\n";
    respond(response_out, 200, "text/plain", text);
}

/// Sends a complete response: status, one content-type header, and the body.
fn respond(response_out: ResponseOut, status: u16, content_type: []const u8, text: []const u8) void {
    const headers = c.wasi_http_types_constructor_fields();
    const header_name = "content-type";
    var name: c.http_handler_string_t = .{ .ptr = @constCast(header_name.ptr), .len = header_name.len };
    var value: c.wasi_http_types_field_value_t = .{ .ptr = @constCast(content_type.ptr), .len = content_type.len };
    var header_error: c.wasi_http_types_header_error_t = undefined;
    _ = c.wasi_http_types_method_fields_append(c.wasi_http_types_borrow_fields(headers), &name, &value, &header_error);

    const response = c.wasi_http_types_constructor_outgoing_response(headers);
    _ = c.wasi_http_types_method_outgoing_response_set_status_code(c.wasi_http_types_borrow_outgoing_response(response), status);
    var body: c.wasi_http_types_own_outgoing_body_t = undefined;
    _ = c.wasi_http_types_method_outgoing_response_body(c.wasi_http_types_borrow_outgoing_response(response), &body);

    var result: c.wasi_http_types_result_own_outgoing_response_error_code_t = undefined;
    result.is_err = false;
    result.val.ok = response;
    c.wasi_http_types_static_response_outparam_set(response_out, &result);

    var stream: c.wasi_io_streams_own_output_stream_t = undefined;
    _ = c.wasi_http_types_method_outgoing_body_write(c.wasi_http_types_borrow_outgoing_body(body), &stream);
    // blocking-write-and-flush takes at most 4096 bytes per call
    var done: usize = 0;
    while (done < text.len) {
        const chunk = @min(text.len - done, 4096);
        var bytes: c.http_handler_list_u8_t = .{ .ptr = @constCast(text[done..].ptr), .len = chunk };
        var stream_error: c.wasi_io_streams_stream_error_t = undefined;
        const stream_ref = c.wasi_io_streams_borrow_output_stream(stream);
        if (!c.wasi_io_streams_method_output_stream_blocking_write_and_flush(stream_ref, &bytes, &stream_error)) break;
        done += chunk;
    }
    c.wasi_io_streams_output_stream_drop_own(stream);
    var finish_error: c.wasi_http_types_error_code_t = undefined;
    _ = c.wasi_http_types_static_outgoing_body_finish(body, null, &finish_error);
}
