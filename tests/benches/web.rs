//! The officers' web page at national scale: a node holding the benchmarks' national dataset
//! (1,000 organisations, 10,000 services, 100,000 referrals; a tenth with
//! `PASSERELLE_BENCH_SCALE=10`) serves its page; an officer's session asks it over HTTP on
//! loopback, as a browser does:
//!
//! 1. page weight: the directory search page with 50 results (HTML), and with its
//!    stylesheet and script;
//! 2. time to first byte of the board page (all referrals, newest 200 shown);
//! 3. p50 / p99 of 100 directory searches (words + region) and of 100 board pages, one
//!    after the other — the load of the CLI's queries in the `national` bench.
//!
//! Run: `cargo bench -p passerelle-tests --bench web`. Documented in docs/performance.md.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use passerelle_node::accounts::{Password, Role};
use passerelle_tests::dataset::{DatasetSize, generate};
use passerelle_web::WebConfig;

const ROUNDS: usize = 100;
const PASSWORD: &str = "mot de passe du banc d'essai";

/// One answer: status line and headers, body, time to its first byte, time to its end.
struct Answer {
    head: String,
    body: Vec<u8>,
    first_byte: Duration,
    whole: Duration,
}

/// One HTTP/1.1 request on a new connection, as a browser's first request on a page.
fn request(address: SocketAddr, method: &str, path: &str, cookie: &str, body: &str) -> Answer {
    request_with(address, method, path, cookie, body, "")
}

/// Bytes on the wire of the answer to a GET of `path` by a browser that accepts gzip (the
/// body as sent: compressed, in chunks).
fn wire_bytes(address: SocketAddr, path: &str, cookie: &str) -> usize {
    let answer = request_with(
        address,
        "GET",
        path,
        cookie,
        "",
        "Accept-Encoding: gzip\r\n",
    );
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("content-encoding: gzip"),
        "{path}: {}",
        answer.head
    );
    answer.body.len()
}

fn request_with(
    address: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    body: &str,
    extra: &str,
) -> Answer {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).expect("connect");
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nCookie: {cookie}\r\n{extra}"
    );
    if method == "POST" {
        text.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).expect("send");
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).expect("first byte");
    let first_byte = started.elapsed();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("answer");
    let whole = started.elapsed();
    let mut all = first.to_vec();
    all.extend(rest);
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let mut body = all[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    Answer {
        head,
        body,
        first_byte,
        whole,
    }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .expect("hex size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim()))
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn main() {
    let size = DatasetSize::from_env();
    let dataset = generate(size, 2026);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut node = runtime.block_on(dataset.node_holding_it("Réseau national"));
    let organisations = dataset.organisations.len();
    drop(dataset);
    runtime.block_on(node.start());
    node.handle()
        .accounts()
        .expect("accounts")
        .add("banc", Role::Officer, &Password::new(PASSWORD))
        .expect("an account");
    let web = runtime
        .block_on(passerelle_web::serve(
            node.handle(),
            WebConfig::local(
                "127.0.0.1:0".parse().expect("address"),
                passerelle_node::reference::Lang::Fr,
            ),
        ))
        .expect("serve the page");
    let address = web.address();

    // Sign in as a browser does.
    let login = request(address, "GET", "/login", "", "");
    let login_cookie = cookie(&login.head, "passerelle_login");
    let csrf = login_cookie.split_once('=').expect("token").1.to_owned();
    let signed = request(
        address,
        "POST",
        "/login",
        &login_cookie,
        &format!(
            "csrf={csrf}&name=banc&password={}",
            PASSWORD.replace(' ', "+").replace('\'', "%27")
        ),
    );
    assert!(signed.head.starts_with("HTTP/1.1 303"), "{}", signed.head);
    let session = cookie(&signed.head, "passerelle_session");

    // 1. Page weight.
    let directory = request(address, "GET", "/directory?region=CM005", &session, "");
    let html = String::from_utf8_lossy(&directory.body);
    let rows = html.matches("<tr>").count();
    assert!(rows > 50, "50 results and the heading row: {rows} rows");
    let css = request(address, "GET", "/static/app.css", "", "");
    let js = request(address, "GET", "/static/app.js", "", "");
    let (page, assets) = (directory.body.len(), css.body.len() + js.body.len());
    println!("organisations: {organisations}");
    println!(
        "directory page, 50 results: {:.1} kB of HTML; {:.1} kB with the stylesheet and script ({:.1} kB); {:.1} kB on the wire, gzipped, all three",
        page as f64 / 1e3,
        (page + assets) as f64 / 1e3,
        assets as f64 / 1e3,
        [
            "/directory?region=CM005",
            "/static/app.css",
            "/static/app.js"
        ]
        .into_iter()
        .map(|path| wire_bytes(address, path, &session))
        .sum::<usize>() as f64
            / 1e3
    );

    // 2. Time to first byte of the board page.
    let mut board_first = Vec::new();
    let mut board_whole = Vec::new();
    let mut searches = Vec::new();
    for round in 0..ROUNDS {
        let board = request(address, "GET", "/board?view=all", &session, "");
        assert!(board.head.starts_with("HTTP/1.1 200"), "{}", board.head);
        board_first.push(board.first_byte);
        board_whole.push(board.whole);
        let words = ["emploi", "formation", "soutien", "logement"][round % 4];
        let search = request(
            address,
            "GET",
            &format!("/directory?q={words}&region=CM005"),
            &session,
            "",
        );
        assert!(search.head.starts_with("HTTP/1.1 200"), "{}", search.head);
        searches.push(search.whole);
    }
    for list in [&mut board_first, &mut board_whole, &mut searches] {
        list.sort();
    }
    println!(
        "board page (all, newest 200 of the board), time to first byte p50 / p99: {:.1} / {:.1} ms; whole page p50 / p99: {:.1} / {:.1} ms",
        percentile(&board_first, 0.5),
        percentile(&board_first, 0.99),
        percentile(&board_whole, 0.5),
        percentile(&board_whole, 0.99)
    );
    println!(
        "directory search page (words + region), whole page p50 / p99: {:.1} / {:.1} ms",
        percentile(&searches, 0.5),
        percentile(&searches, 0.99)
    );
    runtime.block_on(web.shutdown());
    runtime.block_on(node.stop());
}
