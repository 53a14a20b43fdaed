//! nginx directives halo does not implement: which are refused (an error: ignoring them would
//! change what the server does in a way that matters, such as access control or TLS) and which
//! are warned about (ignoring them changes performance or cosmetics only).

/// Why `name` is refused, if it is.
pub(crate) fn refused_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "auth_jwt" => "only auth_basic, auth_request and allow/deny are implemented",
        "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "memcached_pass" => {
            "halo proxies HTTP and gRPC only (proxy_pass, grpc_pass)"
        }
        "ssl_conf_command"
        | "ssl_ocsp"
        | "ssl_ocsp_responder"
        | "ssl_ocsp_cache"
        | "ssl_certificate_cache"
        | "ssl_key_log"
        | "ssl_ech_file"
        | "proxy_ssl_crl"
        | "proxy_ssl_conf_command"
        | "proxy_ssl_certificate_cache"
        | "proxy_ssl_key_log" => "this TLS setting is not implemented by halo",
        "proxy_cache" | "proxy_cache_path" | "proxy_store" => "halo has no response cache",
        "proxy_cookie_flags" => {
            "halo does not change Set-Cookie flags (Secure, HttpOnly, SameSite) yet"
        }
        "sub_filter" | "perl" | "js_content" | "lua_code_cache" | "content_by_lua_block" => {
            "response rewriting and scripting are not implemented"
        }
        _ => return None,
    })
}

/// What halo does instead of `name`, if it is a directive halo accepts and ignores.
pub(crate) fn warned_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "tcp_nopush" | "tcp_nodelay" | "sendfile_max_chunk" | "aio" | "directio"
        | "output_buffers" => "halo manages socket options and file I/O itself",
        "gunzip" | "gunzip_buffers" => {
            "halo does not decompress responses (they pass through as the upstream sent them)"
        }
        "server_names_hash_bucket_size"
        | "server_names_hash_max_size"
        | "types_hash_max_size"
        | "types_hash_bucket_size"
        | "variables_hash_max_size"
        | "variables_hash_bucket_size"
        | "map_hash_bucket_size"
        | "map_hash_max_size"
        | "proxy_headers_hash_max_size"
        | "proxy_headers_hash_bucket_size" => "halo sizes its tables itself",
        "open_file_cache"
        | "open_file_cache_valid"
        | "open_file_cache_min_uses"
        | "open_file_cache_errors"
        | "open_log_file_cache" => "halo does not cache open files",
        "proxy_buffering"
        | "proxy_buffers"
        | "proxy_buffer_size"
        | "proxy_busy_buffers_size"
        | "proxy_max_temp_file_size"
        | "proxy_temp_file_write_size"
        | "proxy_temp_path"
        | "proxy_request_buffering"
        | "client_body_buffer_size"
        | "client_body_in_single_buffer"
        | "client_body_in_file_only"
        | "client_body_temp_path" => "halo streams bodies without disk buffering",
        "proxy_ignore_client_abort" | "proxy_socket_keepalive" | "proxy_bind" => {
            "not implemented by halo"
        }
        "etag"
        | "ssi"
        | "log_not_found"
        | "log_subrequest"
        | "msie_padding"
        | "reset_timedout_connection"
        | "lingering_close"
        | "lingering_time"
        | "lingering_timeout"
        | "underscores_in_headers"
        | "ignore_invalid_headers"
        | "merge_slashes"
        | "recursive_error_pages"
        | "chunked_transfer_encoding" => "not implemented by halo; its default behaviour applies",
        "worker_rlimit_nofile"
        | "worker_cpu_affinity"
        | "worker_priority"
        | "worker_shutdown_timeout"
        | "daemon"
        | "master_process"
        | "env"
        | "load_module"
        | "pcre_jit"
        | "thread_pool"
        | "timer_resolution"
        | "multi_accept"
        | "accept_mutex"
        | "accept_mutex_delay"
        | "debug_connection"
        | "lock_file"
        | "working_directory" => "process management is halo's own (one multi-threaded process)",
        "limit_rate"
        | "limit_rate_after"
        | "limit_conn_log_level"
        | "limit_req_log_level"
        | "limit_conn_dry_run"
        | "limit_req_dry_run" => "not implemented by halo",
        "source_charset" | "charset_types" | "override_charset" => "halo does not convert charsets",
        _ => return None,
    })
}

/// Whether nginx (as far as halo knows) has a directive of this name.
pub(crate) fn is_known(name: &str) -> bool {
    super::import::handled(name) || refused_reason(name).is_some() || warned_reason(name).is_some()
}
