//! The built-in dashboard at `GET /`: one HTML page, a script and a style sheet, embedded in
//! the binary (no CDN, no front-end build: the page works offline). It uses only the public
//! GraphQL API, so it is also the reference client for people building their own.
//!
//! `http.dashboard_dir` serves the same file names from a directory instead, to work on the
//! page without rebuilding the binary.

use std::path::PathBuf;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// One asset: its URL path, file name and content type.
struct Asset {
    route: &'static str,
    file: &'static str,
    content_type: &'static str,
    embedded: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        route: "/",
        file: "index.html",
        content_type: "text/html; charset=utf-8",
        embedded: include_str!("index.html"),
    },
    Asset {
        route: "/dashboard/app.js",
        file: "app.js",
        content_type: "text/javascript; charset=utf-8",
        embedded: include_str!("app.js"),
    },
    Asset {
        route: "/dashboard/style.css",
        file: "style.css",
        content_type: "text/css; charset=utf-8",
        embedded: include_str!("style.css"),
    },
];

/// The page may load nothing from elsewhere: scripts, styles and connections stay on this
/// origin (the WebSocket included).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Registers `/` and `/dashboard/*`; `dir` replaces the embedded files when set.
pub fn configure(cfg: &mut web::ServiceConfig, dir: Option<PathBuf>) {
    for asset in ASSETS {
        let dir = dir.clone();
        cfg.route(
            asset.route,
            web::get().to(move || {
                let dir = dir.clone();
                async move { serve(asset, dir).await }
            }),
        );
    }
}

async fn serve(asset: &'static Asset, dir: Option<PathBuf>) -> HttpResponse {
    let body = match dir {
        None => asset.embedded.to_owned(),
        Some(dir) => match web::block({
            let path = dir.join(asset.file);
            move || std::fs::read_to_string(path)
        })
        .await
        {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => {
                log::error!(
                    "dashboard: cannot read {} (http.dashboard_dir): {e}",
                    dir.join(asset.file).display()
                );
                return HttpResponse::NotFound().body("dashboard asset missing");
            }
            Err(e) => {
                log::error!("dashboard: {e}");
                return HttpResponse::InternalServerError().finish();
            }
        },
    };
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
