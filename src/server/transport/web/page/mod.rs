//! TEMPORARY on branch transport: replaced by the page module from branch
//! web-page at merge.

pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

pub fn asset(path: &str) -> Option<Asset> {
    (path == "/").then_some(Asset {
        content_type: "text/html; charset=utf-8",
        body: b"<!doctype html><title>chatter</title>",
    })
}
