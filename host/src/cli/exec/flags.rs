//! `exec`'s flags: curl's, where curl has one.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::args::parse_tls_version;

#[derive(Args)]
pub struct ExecArgs {
    /// GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS (any case); with -X, the URL alone.
    #[arg(value_name = "METHOD|URL")]
    pub first: String,
    /// The URL, when the method comes first.
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// The method (curl's -X); GET, or POST when a body is given.
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// A request header, `Name: value` (repeatable); `Name:` takes away the one a flag would
    /// add (the executor's own Host and User-Agent are sent empty), `Name;` sends it empty;
    /// `@FILE` (`@-`: standard input) gives a header a line.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The body as text (repeatable, joined with `&`), sent as application/x-www-form-urlencoded unless -H names a type;
    /// `@FILE` reads it from a file without its carriage returns and newlines (as curl).
    #[arg(
        short = 'd',
        long = "data",
        visible_aliases = ["body", "data-ascii"],
        value_name = "DATA"
    )]
    pub data: Vec<String>,
    /// As -d, but `@` is a character like any other (what browsers' "Copy as cURL" writes).
    #[arg(long = "data-raw", value_name = "DATA")]
    pub data_raw: Vec<String>,
    /// The body as bytes, exactly; `@FILE` reads it from a file (repeatable, joined with `&`).
    #[arg(long = "data-binary", value_name = "DATA")]
    pub data_binary: Vec<String>,
    /// Put the response head before the body on standard output.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// A HEAD request; its response head goes to standard output.
    #[arg(short = 'I', long = "head")]
    pub head: bool,
    /// The request's and the response's heads on standard error (`>` and `<`), and what
    /// the connection was (`*`).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// No error messages (the exit code tells).
    #[arg(short = 's', long)]
    pub silent: bool,
    /// With -s, still show an error.
    #[arg(short = 'S', long = "show-error")]
    pub show_error: bool,
    /// Follow redirects (by default they are not, as curl).
    #[arg(short = 'L', long = "location")]
    pub location: bool,
    /// Redirects followed at most, with -L (curl's default 50; at most 100 here).
    #[arg(long = "max-redirs", value_name = "N")]
    pub max_redirs: Option<u32>,
    /// An HTTP status of 400 or more is an error: exit 22, no body.
    #[arg(short = 'f', long)]
    pub fail: bool,
    /// As -f, but the body is still written.
    #[arg(long = "fail-with-body", conflicts_with = "fail")]
    pub fail_with_body: bool,
    /// Print this after the transfer, also when it failed: curl's variables (%{http_code},
    /// %{time_total}, %{time_starttransfer}, %{size_download}, %{speed_download},
    /// %{exitcode}, %{errormsg}, %header{NAME}, %{header_json}, %{json}, ...), %{stderr},
    /// %{stdout}, %{onerror}, \n; `@FILE` (`@-`) reads the format.
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT")]
    pub write_out: Option<String>,
    /// The User-Agent header.
    #[arg(short = 'A', long = "user-agent", value_name = "NAME")]
    pub user_agent: Option<String>,
    /// The Referer header.
    #[arg(short = 'e', long = "referer", value_name = "URL")]
    pub referer: Option<String>,
    /// Basic authentication, `user:password`.
    #[arg(short = 'u', long = "user", value_name = "USER:PASSWORD")]
    pub user: Option<String>,
    /// Send from this local address.
    #[arg(long, value_name = "IP")]
    pub bind_ip: Option<String>,
    /// Write the body, byte for byte, to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the body to a file named as the URL's last path segment (its query left out),
    /// in the current directory or --output-dir.
    #[arg(short = 'O', long = "remote-name")]
    pub remote_name: bool,
    /// The directory -o and -O write in.
    #[arg(long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Create the directories -o and -O need.
    #[arg(long = "create-dirs")]
    pub create_dirs: bool,
    /// Write the response head to FILE (`-`: standard output) as it comes, also with -f.
    #[arg(short = 'D', long = "dump-header", value_name = "FILE")]
    pub dump_header: Option<PathBuf>,
    /// The whole request's deadline (1.5, 2s, 500ms, 1m30s; 0, or under a millisecond: none,
    /// as curl).
    #[arg(short = 'm', long, value_name = "DURATION", value_parser = parse_timeout)]
    pub max_time: Option<Duration>,
    /// The connection's deadline (0: none).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub connect_timeout: Option<Duration>,
    /// Retry up to N times, as curl: after a timeout or a 408, 429, 500, 502, 503 or 504
    /// answer (waiting 1 s, doubling, or --retry-delay).
    #[arg(long, value_name = "N")]
    pub retry: Option<u32>,
    /// With --retry, also retry a connection that could not be made.
    #[arg(long = "retry-connrefused")]
    pub retry_connrefused: bool,
    /// With --retry, retry after any error (with -f, any status of 400 or more).
    #[arg(long = "retry-all-errors")]
    pub retry_all_errors: bool,
    /// With --retry, no new try starts this long after the first (0: no limit).
    #[arg(long = "retry-max-time", value_name = "DURATION", value_parser = parse_timeout)]
    pub retry_max_time: Option<Duration>,
    /// Ask for a gzip or deflate body and print it decoded (curl's --compressed).
    #[arg(long)]
    pub compressed: bool,
    /// Print the outcome as JSON (text bodies as text, others base64 with `body_base64: true`).
    #[arg(long)]
    pub json: bool,
    /// Trust the CA certificates in this PEM file too (repeatable).
    #[arg(long, value_name = "FILE")]
    pub cacert: Vec<PathBuf>,
    /// Do not verify the server's certificate (https).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Client certificate (PEM chain) for mutual TLS; with --key.
    #[arg(short = 'E', long = "cert", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// TLS 1.2 at least (curl's --tlsv1.2; the default).
    #[arg(long = "tlsv1.2")]
    pub tls12: bool,
    /// TLS 1.3 at least.
    #[arg(long = "tlsv1.3")]
    pub tls13: bool,
    /// TLS version at most: 1.2 or 1.3.
    #[arg(long, value_name = "VERSION", value_parser = parse_tls_version)]
    pub tls_max: Option<compose::tls::TlsVersion>,
    /// Send through this HTTP proxy (`[http://][user:password@]host[:port]`, port 1080 by
    /// default): http requests in absolute form, https through a CONNECT tunnel. The
    /// connection to the proxy leaves from the source address. `""` turns off the proxy
    /// environment variables.
    #[arg(short = 'x', long = "proxy", value_name = "URL")]
    pub proxy: Option<String>,
    /// The proxy's credentials, `user:password` (Basic).
    #[arg(short = 'U', long = "proxy-user", value_name = "USER:PASSWORD")]
    pub proxy_user: Option<String>,
    /// Hosts reached without the proxy (commas; `*` for all; domains and CIDR blocks), in
    /// place of `no_proxy`.
    #[arg(long = "noproxy", value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Send a Cookie: `name=value; name2=value2`, or the cookies of a Netscape cookie file
    /// that match the URL (repeatable). Cookies received are then sent on redirects too.
    #[arg(short = 'b', long = "cookie", value_name = "DATA|FILE")]
    pub cookie: Vec<String>,
    /// Write every cookie known after the transfer to FILE (Netscape format; `-` for
    /// standard output).
    #[arg(short = 'c', long = "cookie-jar", value_name = "FILE")]
    pub cookie_jar: Option<PathBuf>,
    /// Send -d, --data-binary and --data-urlencode as the URL's query, in a GET.
    #[arg(short = 'G', long = "get")]
    pub get: bool,
    /// A form field, URL-encoded: `content`, `=content`, `name=content`, `@file`,
    /// `name@file` (repeatable, joined with `&`).
    #[arg(long = "data-urlencode", value_name = "DATA")]
    pub data_urlencode: Vec<String>,
    /// A JSON body (`@FILE` reads it), with Content-Type and Accept application/json (curl's
    /// `--json`, which here means the outcome as JSON).
    #[arg(long = "data-json", value_name = "JSON")]
    pub data_json: Option<String>,
    /// Added to the URL's query (repeatable, joined with `&`): as --data-urlencode, and
    /// `+TEXT` adds TEXT as it is (curl's `--url-query`).
    #[arg(long = "url-query", value_name = "DATA")]
    pub url_query: Vec<String>,
    /// Ask for part of the body: `Range: bytes=RANGE` (`0-99`, `-500`, `100-`; curl's -r).
    #[arg(short = 'r', long = "range", value_name = "RANGE")]
    pub range: Option<String>,
    /// Accepted for curl's command lines: URLs are never globbed here (`{a,b}` and `[1-3]`
    /// are sent as they are written, as curl sends them with -g).
    #[arg(short = 'g', long = "globoff")]
    pub globoff: bool,
    /// A multipart/form-data field (repeatable): `name=value`, `name=@file` (a file part,
    /// with `;type=TYPE` and `;filename=NAME`), `name=<file` (a file's text as the value).
    #[arg(short = 'F', long = "form", value_name = "NAME=CONTENT")]
    pub form: Vec<String>,
    /// PUT this file (to the URL, or the URL plus the file's name when it ends in `/`).
    #[arg(short = 'T', long = "upload-file", value_name = "FILE")]
    pub upload_file: Option<PathBuf>,
    /// Connect to ADDRESS for HOST:PORT instead of resolving it (repeatable; addresses
    /// separated by commas, IPv6 in brackets).
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,
    /// Send from this local address or interface name (as --bind-ip).
    #[arg(long = "interface", value_name = "IP|NAME", conflicts_with = "bind_ip")]
    pub interface: Option<String>,
    /// Send from this local port, or the first free one of a range (`8000-8010`).
    #[arg(long = "local-port", value_name = "PORT[-PORT]")]
    pub local_port: Option<String>,
    /// Connect over IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Connect over IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// The wait between retries (seconds, or a duration), in place of the backoff (0: the
    /// backoff).
    #[arg(long = "retry-delay", value_name = "DURATION", value_parser = parse_timeout)]
    pub retry_delay: Option<Duration>,
    /// Read the body at most this fast, bytes a second (`100K`, `1M`, `2G`; the upload is
    /// not limited).
    #[arg(long = "limit-rate", value_name = "SPEED", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// HTTP/1.1 (the default).
    #[arg(long = "http1.1", conflicts_with_all = ["http2", "http2_prior_knowledge"])]
    pub http11: bool,
    /// HTTP/2 where the server chooses it: over https offered by ALPN (else HTTP/1.1, as
    /// curl); over http, HTTP/1.1 (no h2c upgrade: use --http2-prior-knowledge).
    #[arg(long = "http2")]
    pub http2: bool,
    /// HTTP/2 only: over http with prior knowledge (h2c), over https by ALPN (an error if the
    /// server does not choose it).
    #[arg(long = "http2-prior-knowledge", conflicts_with = "http2")]
    pub http2_prior_knowledge: bool,
}

impl ExecArgs {
    /// Whether error messages are shown: not with `-s`, unless `-S`.
    pub fn shows_errors(&self) -> bool {
        !self.silent || self.show_error
    }
}

/// A timeout as curl takes it: a duration, 0 included.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    crate::format::scenario::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration (1.5, 2s, 500ms, 1m30s)"))
}

/// curl's speeds: bytes a second, with a K, M or G suffix (powers of 1024).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(format!("{s:?}: expected bytes a second, e.g. 100K, 1M")),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("{s:?} is too large")),
        _ => Err(format!("{s:?}: expected bytes a second, e.g. 100K, 1M")),
    }
}
