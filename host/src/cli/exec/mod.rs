//! `scheduler exec`: one request, as curl sends it, through a user's instance.

use std::process::ExitCode;

mod answer;
mod body;
mod cookies;
mod flags;
mod interface;
mod request;
mod route;
mod saved;
mod tls;
mod writeout;

pub use flags::ExecArgs;

use crate::runtime::exec as x;
use answer::{Asked, answered, failed};
use request::request_of;

pub async fn exec(args: ExecArgs) -> ExitCode {
    let request::Req {
        call,
        url,
        params,
        upload,
    } = match request_of(&args) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let body_path = match saved::body_path(&args, &url) {
        Ok(p) => p,
        Err(e) => {
            if args.shows_errors() {
                eprintln!("scheduler: (23) {e}");
            }
            return ExitCode::from(23);
        }
    };
    let write_out = match writeout::format_of(args.write_out.as_deref()) {
        Ok(f) => f,
        Err(e) => return super::finish::usage(&e),
    };
    let runtime = match tls::runtime_for(&args, &url) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let proxy = match route::proxy_for(&args, &url, &|n| std::env::var(n).ok()) {
        Ok(p) => p,
        Err(e) => return super::finish::usage(&e),
    };
    let mut params = params;
    if let Some(p) = &proxy {
        params["proxy"] = p.url.clone().into();
    }
    // Only what the command names is reachable (with -L, any port of its host too).
    let policy = route::policy_for(&args, &url, proxy.as_ref(), &params).await;
    let mut inst = match runtime.instantiate(policy, None).await {
        Ok(i) => i,
        Err(e) => return fatal(&e),
    };
    let action = x::Action {
        id: "exec".into(),
        call,
        with_params: params.to_string(),
        exports: vec![],
    };
    let jar = cookies::files(&args);
    if !jar.is_empty()
        && let Err(e) = inst.add_cookies(&jar).await
    {
        return fatal(&e);
    }
    let asked = Asked {
        method: method_name(call),
        url: &url,
        params: &params,
        body_path,
        write_out,
    };
    let start = std::time::Instant::now();
    let result = match upload {
        Some(body) => inst.execute_with_body(&action, body).await,
        None => inst.execute(&action).await,
    };
    let code = match result {
        Ok(Ok(o)) => {
            let tls = inst.tls_last.lock().ok().and_then(|l| l.clone());
            answered(&args, &asked, &o, tls)
        }
        Ok(Err(e)) => failed(&args, &asked, &e, start.elapsed().as_micros() as u64),
        Err(e) => return fatal(&e),
    };
    // The jar is written last, as curl writes it (`-c -` after the body).
    if let Some(path) = &args.cookie_jar {
        let written = match inst.cookies().await {
            Ok(all) => cookies::write_jar(path, &all),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            eprintln!("scheduler: (23) {e}");
            return ExitCode::from(23);
        }
    }
    code
}

fn method_name(m: x::HttpMethod) -> &'static str {
    use x::HttpMethod as M;
    match m {
        M::Get => "GET",
        M::Post => "POST",
        M::Put => "PUT",
        M::Delete => "DELETE",
        M::Patch => "PATCH",
        M::Head => "HEAD",
        M::Options => "OPTIONS",
    }
}

fn fatal(e: &str) -> ExitCode {
    eprintln!("scheduler: {e}");
    ExitCode::FAILURE
}
