//! The chat page the WebSocket listener serves: a person opens
//! `http://host:port/` in a browser, picks a name and chats, with no IRC
//! client installed.
//!
//! The page is small files beside this one (`index.html`, `chat.css`, an
//! icon `favicon.svg`, and three scripts loaded in order: `irc.js`, the
//! IRC client; `view.js`, what the page shows; `chat.js`, the chat between
//! them), written by hand with no build step, no libraries and nothing
//! fetched from elsewhere, and compiled into the binary with
//! `include_bytes!`: the server needs no directory of files at run time,
//! cannot be made to serve any other file (there is no file system path
//! here to escape), and the page always matches the server it came with.
//! The scripts speak IRC over a WebSocket to `/` on the same host and port
//! (IRCv3 subprotocol `text.ircv3.net`, one line per message), so the page
//! is just another IRC client to the server. Nothing is inline: the
//! listener's Content-Security-Policy allows scripts and styles from the
//! page's own origin only.
//!
//! This module only answers which bytes a path names; the HTTP around them
//! (status lines, headers, methods) is the listener's.

/// One file of the page.
pub struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The page's files by the path each is served at.
const ASSETS: [(&str, Asset); 6] = [
    ("/", Asset { content_type: "text/html; charset=utf-8", body: include_bytes!("index.html") }),
    ("/irc.js", Asset { content_type: JAVASCRIPT, body: include_bytes!("irc.js") }),
    ("/view.js", Asset { content_type: JAVASCRIPT, body: include_bytes!("view.js") }),
    ("/chat.js", Asset { content_type: JAVASCRIPT, body: include_bytes!("chat.js") }),
    ("/chat.css", Asset { content_type: "text/css; charset=utf-8", body: include_bytes!("chat.css") }),
    ("/favicon.svg", Asset { content_type: "image/svg+xml", body: include_bytes!("favicon.svg") }),
];

/// The file served at `path` ("/" is the page), if there is one. `path` is
/// a request target's path; a query string (`?...`) after it is ignored,
/// so `/?v=2` is the page too.
pub fn asset(path: &str) -> Option<Asset> {
    let path = path.split_once('?').map_or(path, |(path, _query)| path);
    ASSETS
        .iter()
        .find(|(served_at, _)| *served_at == path)
        .map(|(_, asset)| Asset { content_type: asset.content_type, body: asset.body })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local paths a file of the page names in `attribute="/..."`.
    fn referenced(text: &str, attribute: &str) -> Vec<String> {
        let marker = format!("{attribute}=\"/");
        text.match_indices(&marker)
            .map(|(at, _)| {
                let rest = &text[at + marker.len() - 1..];
                rest[..rest.find('"').expect("a closing quote")].to_string()
            })
            .collect()
    }

    #[test]
    fn every_path_the_page_references_is_served() {
        let page = std::str::from_utf8(asset("/").expect("the page").body).expect("UTF-8");
        let paths: Vec<String> = ["href", "src"].iter().flat_map(|a| referenced(page, a)).collect();
        for expected in ["/irc.js", "/view.js", "/chat.js", "/chat.css", "/favicon.svg"] {
            assert!(paths.iter().any(|p| p == expected), "index.html does not reference {expected}");
        }
        for path in &paths {
            assert!(asset(path).is_some(), "index.html references {path}, which is not served");
        }
        // Nothing comes from another host: no CDN, no web fonts.
        for (_, file) in ASSETS {
            let text = std::str::from_utf8(file.body).expect("UTF-8");
            for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import", "url(http"] {
                assert!(!text.contains(remote), "a file of the page loads something remote: {remote}");
            }
        }
    }

    /// The scripts share one scope and each uses what the ones before it
    /// define (see irc.js): all of them, each once, in that order, and
    /// deferred, so that they run in order once the page is parsed; none
    /// inline, which the Content-Security-Policy would block.
    #[test]
    fn the_scripts_load_in_order() {
        let page = std::str::from_utf8(asset("/").expect("the page").body).expect("UTF-8");
        let tags: Vec<&str> = page
            .match_indices("<script")
            .map(|(at, _)| &page[at..at + page[at..].find('>').unwrap()])
            .collect();
        let sources: Vec<String> = tags.iter().flat_map(|tag| referenced(tag, "src")).collect();
        assert_eq!(sources, ["/irc.js", "/view.js", "/chat.js"], "the page's scripts, in order");
        for tag in &tags {
            assert!(tag.ends_with(" defer"), "a script is not deferred: {tag}>");
        }
        assert_eq!(page.matches("></script>").count(), tags.len(), "an inline script");
        let served: Vec<&str> = ASSETS.iter().map(|(path, _)| *path).filter(|p| p.ends_with(".js")).collect();
        assert_eq!(served, sources, "a script served but not loaded");
    }

    #[test]
    fn each_file_has_its_type() {
        assert!(asset("/").unwrap().content_type.starts_with("text/html"));
        for script in ["/irc.js", "/view.js", "/chat.js"] {
            assert!(asset(script).unwrap().content_type.starts_with("text/javascript"));
        }
        assert!(asset("/chat.css").unwrap().content_type.starts_with("text/css"));
        assert_eq!(asset("/favicon.svg").unwrap().content_type, "image/svg+xml");
        assert_eq!(asset("/?reload=1").unwrap().body, asset("/").unwrap().body);
    }

    #[test]
    fn unknown_paths_are_none() {
        for path in
            ["", "/index.html", "/nope", "/chat.js/", "/../Cargo.toml", "/mod.rs", "chat.js", "//chat.js"]
        {
            assert!(asset(path).is_none(), "{path:?} is served");
        }
    }
}
