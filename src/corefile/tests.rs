//! Table tests of the grammar, the keys, imports and the errors; the
//! directives' own rows are in `tests/directives.rs`, the stock Corefiles in
//! `tests/fixtures.rs`.

mod directives;
mod fixtures;

use std::path::PathBuf;

use super::*;

pub(super) fn test_env(k: &str) -> Option<String> {
    match k {
        "PORT" => Some("1053".into()),
        "ZONE" => Some("Example.ORG".into()),
        "SPACED" => Some("two words".into()),
        _ => None,
    }
}

pub(super) fn opts() -> Options<'static> {
    Options { default_port: 5300, env: &test_env }
}

/// A folder holding the Corefile under test and whatever it imports.
pub(super) struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn parse(&self, text: &str) -> Result<Corefile, CorefileError> {
        parse_str(text, &self.path("Corefile"), &opts())
    }
}

pub(super) fn parse_ok(text: &str) -> Corefile {
    let d = Dir::new();
    match d.parse(text) {
        Ok(c) => c,
        Err(e) => panic!("{text}\n-> {e}"),
    }
}

/// The error for `text`, checked to be at `Corefile:line` and to say `needle`.
pub(super) fn assert_err(label: &str, text: &str, line: usize, needle: &str) {
    let d = Dir::new();
    let e = match d.parse(text) {
        Ok(c) => panic!("{label}: parsed, expected an error: {c:?}"),
        Err(e) => e,
    };
    assert_eq!(e.pos, Pos { file: d.path("Corefile"), line }, "{label}: {e}");
    assert!(e.message.contains(needle), "{label}: {e:?} does not say {needle:?}");
    assert_eq!(e.to_string(), format!("{}:{line}: {}", d.path("Corefile").display(), e.message));
}

pub(super) fn keys(c: &Corefile) -> Vec<Vec<(String, u16)>> {
    c.blocks.iter().map(|b| b.keys.iter().map(|k| (k.zone.clone(), k.port)).collect()).collect()
}

pub(super) fn names(b: &ServerBlock) -> Vec<&'static str> {
    b.plugins.iter().map(|d| d.plugin.name()).collect()
}

/// The only directive of the only block.
pub(super) fn only(c: &Corefile) -> &Plugin {
    assert_eq!(c.blocks.len(), 1);
    assert_eq!(c.blocks[0].plugins.len(), 1, "{:?}", c.blocks[0].plugins);
    &c.blocks[0].plugins[0].plugin
}

fn k(z: &str, p: u16) -> (String, u16) {
    (z.to_string(), p)
}

#[test]
fn server_block_keys() {
    type Keys = Vec<Vec<(String, u16)>>;
    let rows: &[(&str, Keys)] = &[
        (".:53 {\n}", vec![vec![k(".", 53)]]),
        (". {\n}", vec![vec![k(".", 5300)]]),
        ("cluster.local:53 {\n}", vec![vec![k("cluster.local.", 53)]]),
        ("dns://.:53 {\n}", vec![vec![k(".", 53)]]),
        ("dns://example.org {\n}", vec![vec![k("example.org.", 5300)]]),
        ("example.org example.net:1053 {\n}", vec![vec![k("example.org.", 5300), k("example.net.", 1053)]]),
        ("Example.ORG. {\n}", vec![vec![k("example.org.", 5300)]]),
        ("example.org, example.net {\n}", vec![vec![k("example.org.", 5300), k("example.net.", 5300)]]),
        ("example.org,example.net:54 {\n}", vec![vec![k("example.org.", 5300), k("example.net.", 54)]]),
        ("example.org,\n  example.net\n{\n}", vec![vec![k("example.org.", 5300), k("example.net.", 5300)]]),
        ("10.0.0.0/8:53 {\n}", vec![vec![k("10.in-addr.arpa.", 53)]]),
        ("10.0.0.0/7 {\n}", vec![vec![k("10.in-addr.arpa.", 5300), k("11.in-addr.arpa.", 5300)]]),
        ("192.168.1.0/24 {\n}", vec![vec![k("1.168.192.in-addr.arpa.", 5300)]]),
        ("192.168.0.0/23:53 {\n}", vec![vec![k("0.168.192.in-addr.arpa.", 53), k("1.168.192.in-addr.arpa.", 53)]]),
        ("10.1.2.3/32 {\n}", vec![vec![k("3.2.1.10.in-addr.arpa.", 5300)]]),
        ("fd00::/8 {\n}", vec![vec![k("d.f.ip6.arpa.", 5300)]]),
        ("fd00::/7:53 {\n}", vec![vec![k("c.f.ip6.arpa.", 53), k("d.f.ip6.arpa.", 53)]]),
        (".:53\n", vec![vec![k(".", 53)]]),
        ("{$ZONE}:{$PORT} {\n}", vec![vec![k("example.org.", 1053)]]),
        ("{%ZONE%}:{%PORT%} {\n}", vec![vec![k("example.org.", 1053)]]),
        (".:53 {\n}\nexample.org:53 {\n}", vec![vec![k(".", 53)], vec![k("example.org.", 53)]]),
        // The same zone on another port, or bound to other addresses.
        (".:53 {\n}\n.:54 {\n}", vec![vec![k(".", 53)], vec![k(".", 54)]]),
        (".:53 {\nbind 127.0.0.1\n}\n.:53 {\nbind 127.0.0.2\n}", vec![vec![k(".", 53)], vec![k(".", 53)]]),
    ];
    for (text, want) in rows {
        assert_eq!(&keys(&parse_ok(text)), want, "{text}");
    }
    // CoreDNS's own cidr_test.go cases, and a non-octet boundary from corefile(5).
    let reverse: &[(&str, &[&str])] = &[
        ("10.0.0.0/15", &["0.10.in-addr.arpa.", "1.10.in-addr.arpa."]),
        ("10.0.0.0/16", &["0.10.in-addr.arpa."]),
        ("192.168.1.1/23", &["0.168.192.in-addr.arpa.", "1.168.192.in-addr.arpa."]),
        (
            "10.129.60.0/22",
            &[
                "60.129.10.in-addr.arpa.",
                "61.129.10.in-addr.arpa.",
                "62.129.10.in-addr.arpa.",
                "63.129.10.in-addr.arpa.",
            ],
        ),
        ("2001:db8::/31", &["8.b.d.0.1.0.0.2.ip6.arpa.", "9.b.d.0.1.0.0.2.ip6.arpa."]),
    ];
    for (cidr, want) in reverse {
        assert_eq!(parse_ok(&format!("{cidr} {{\n}}")).blocks[0].zones(), *want, "{cidr}");
    }
    let z = parse_ok("10.0.0.0/27 {\n}").blocks[0].zones();
    assert_eq!((z.len(), z[0].as_str(), z[31].as_str()), (32, "0.0.0.10.in-addr.arpa.", "31.0.0.10.in-addr.arpa."));

    let c = parse_ok("10.0.0.0/7 example.org {\n}");
    assert_eq!(c.blocks[0].zones(), ["10.in-addr.arpa.", "11.in-addr.arpa.", "example.org."]);
    assert_eq!(c.blocks[0].pos.line, 1);
}

#[test]
fn grammar() {
    // Comments, full line and trailing, and a `#` inside a word.
    let c = parse_ok("# top\n.:53 { # after the brace\n  # alone\n  errors # trailing\n  any#glued\n}\n");
    assert_eq!(names(&c.blocks[0]), ["errors", "any"]);
    assert_eq!(c.blocks[0].plugins[1].pos.line, 5);
    // Quoted strings: spaces, escapes, lines.
    let c = parse_ok(".:53 {\n  chaos \"my version\" \"a\\\"b\" \"c\\d\"\n}");
    let Plugin::Chaos(ch) = only(&c) else { panic!() };
    assert_eq!(ch.version, "my version");
    assert_eq!(ch.authors, ["a\"b", "c\\d"]);
    let c = parse_ok(".:53 {\n  chaos \"one\ntwo\" x y\n  errors\n}");
    assert_eq!(c.blocks[0].plugins[0].pos.line, 4);
    let Plugin::Chaos(ch) = &c.blocks[0].plugins[1].plugin else { panic!() };
    assert_eq!((ch.version.as_str(), ch.authors.len()), ("one\ntwo", 2));
    // A quoted brace is a word; an empty quoted word is a word.
    let c = parse_ok(".:53 {\n  chaos \"{\" \"\" \"}\"\n}");
    let Plugin::Chaos(ch) = only(&c) else { panic!() };
    assert_eq!((ch.version.as_str(), ch.authors.clone()), ("{", vec![String::new(), "}".into()]));
    // Environment: both syntaxes, a missing variable is empty, a value with spaces stays one word.
    let c = parse_ok(".:53 {\n  chaos v{$NOPE}1{%NOPE%} {$SPACED} {%ZONE%}\n}");
    let Plugin::Chaos(ch) = only(&c) else { panic!() };
    assert_eq!(ch.version, "v1");
    assert_eq!(ch.authors, ["Example.ORG", "two words"]);
    // Directives with and without a block; a block opened on the directive's line may hold a first option.
    let c = parse_ok(".:53 {\n  health { lameduck 5s\n  }\n  ready\n}");
    let Plugin::Health(h) = &c.blocks[0].plugins[1].plugin else { panic!() };
    assert_eq!(h.lameduck, std::time::Duration::from_secs(5));
    // Keys only, no body: a block without plugins.
    assert!(parse_ok(".:53").blocks[0].plugins.is_empty());
    // A block without braces runs to the end of the file.
    assert_eq!(names(&parse_ok(".:53\nerrors\nany\n").blocks[0]), ["errors", "any"]);
    // Windows line ends.
    assert_eq!(names(&parse_ok(".:53 {\r\n  errors\r\n}\r\n").blocks[0]), ["errors"]);
    // Nothing at all.
    assert!(parse_ok("# only a comment\n").blocks.is_empty());
}

#[test]
fn plugin_order() {
    let c = parse_ok(
        ".:53 {\n  forward . 1.1.1.1\n  kubernetes cluster.local\n  rewrite name a.org b.org\n  \
         template IN A x.org\n  rewrite name c.org d.org\n  cache\n  log\n  errors\n  prometheus\n  \
         loop\n  hosts\n  health\n  ready\n  bind 127.0.0.1\n  bufsize\n  reload\n  any\n  chaos\n  \
         loadbalance\n  minimal\n  forward example.org 2.2.2.2\n}",
    );
    let b = &c.blocks[0];
    assert_eq!(
        names(b),
        [
            "reload",
            "bufsize",
            "bind",
            "ready",
            "health",
            "prometheus",
            "errors",
            "log",
            "any",
            "chaos",
            "loadbalance",
            "rewrite",
            "rewrite",
            "cache",
            "minimal",
            "template",
            "hosts",
            "kubernetes",
            "loop",
            "forward",
            "forward"
        ]
    );
    // Repeated directives keep the order they were written in.
    let lines: Vec<usize> = b.plugins.iter().filter(|d| d.plugin.name() != "bind").map(|d| d.pos.line).collect();
    assert_eq!(lines[10..13], [4, 6, 7]);
    assert_eq!(lines[lines.len() - 2..], [2, 22]);
}

#[test]
fn repeated_directives() {
    // bind: merged; health: the last address and lame duck; first-only ones keep the first.
    let c = parse_ok(
        ".:53 {\n  bind 127.0.0.1\n  bind ::1\n  health :8081\n  health { lameduck 3s }\n  \
         bufsize 1000\n  bufsize 2000\n  chaos a\n  chaos b\n}",
    );
    let b = &c.blocks[0];
    assert_eq!(names(b), ["bufsize", "bind", "health", "chaos"]);
    let Plugin::Bind(ips) = &b.plugins[1].plugin else { panic!() };
    assert_eq!(ips, &["127.0.0.1".parse::<std::net::IpAddr>().unwrap(), "::1".parse().unwrap()]);
    let Plugin::Health(h) = &b.plugins[2].plugin else { panic!() };
    assert_eq!((h.addr.to_string().as_str(), h.lameduck.as_secs()), ("0.0.0.0:8081", 3));
    assert!(matches!(b.plugins[0].plugin, Plugin::Bufsize(1000)));
    let Plugin::Chaos(ch) = &b.plugins[3].plugin else { panic!() };
    assert_eq!(ch.version, "a");
    // Directives once per block: an error at the second, per block only.
    for name in ["cache", "errors", "hosts", "kubernetes", "loop", "prometheus", "ready"] {
        let text = format!(".:53 {{\n  {name}\n\n  {name}\n}}\nexample.org {{\n  {name}\n}}");
        assert_err(name, &text, 4, &format!("'{name}' can only be used once per server block"));
    }
}

#[test]
fn errors() {
    let rows: &[(&str, &str, usize, &str)] = &[
        ("tls key", ".:53 {\n}\ntls://.:853 {\n}", 3, "transport tls:// is not supported"),
        ("https key", "https://.:443 {\n}", 1, "transport https://"),
        ("grpc key", "grpc://. {\n}", 1, "transport grpc://"),
        ("quic key", "quic://. {\n}", 1, "transport quic://"),
        ("https3 key", "https3://. {\n}", 1, "transport https3://"),
        ("bad CIDR key", "\n10.0.0.0/33 {\n}", 2, "invalid CIDR 10.0.0.0/33"),
        ("v6 CIDR from ::", "::/0 {\n}", 1, "invalid CIDR"),
        ("port out of range", ".:70000 {\n}", 1, "out of range"),
        ("empty port", ".: {\n}", 1, "expecting data after last colon"),
        ("bad port", "example.org:dns {\n}", 1, "invalid port"),
        ("empty label", "a..b {\n}", 1, "not a valid domain name"),
        ("empty key", "\"\" {\n}", 1, "needs a key"),
        ("no key", "{\n}", 1, "needs a key"),
        ("dangling comma", ".:53, {\n}", 1, "expected another key"),
        ("duplicate zone", ".:53 {\n}\n\nexample.org .:53 {\n}", 4, "cannot serve dns://.:53 - it is already defined"),
        ("duplicate key", ".:53 .:53 {\n}", 1, "already defined"),
        ("default port dup", ". {\n}\n.:5300 {\n}", 3, "already defined"),
        (
            "bound overlaps unbound",
            ".:53 {\n}\n.:53 {\n  bind 127.0.0.1\n}",
            3,
            "cannot serve dns://.:53 on 127.0.0.1 - zone overlap listener capacity with dns://.:53",
        ),
        ("unbound overlaps bound", ".:53 {\n  bind ::1\n}\n.:53 {\n}", 4, "zone overlap listener capacity"),
        ("unknown directive", ".:53 {\n  errors\n  bogus arg\n}", 3, "unknown directive 'bogus'"),
        ("CoreDNS plugin", ".:53 {\n  etcd\n}", 2, "directive 'etcd' is a CoreDNS plugin clusterdns does not support"),
        ("CoreDNS plugin file", ".:53 {\n  file db.example.org\n}", 2, "'file' is a CoreDNS plugin"),
        ("unknown option", ".:53 {\n  forward . 1.1.1.1 {\n    bogus 1\n  }\n}", 3, "unknown property 'bogus'"),
        ("unclosed block", "\n.:53 {\n  errors\n", 2, "not closed"),
        ("unclosed directive block", ".:53 {\n  health {\n    lameduck 5s\n", 2, "block of 'health' is not closed"),
        ("stray close", ".:53 {\n  errors\n}\n}\n", 4, "unexpected '}'"),
        ("close on directive line", ".:53 {\n  errors }\n", 2, "closing brace must start its own line"),
        ("brace alone", ".:53 {\n  {\n}", 2, "unexpected '{'"),
        ("nested block", ".:53 {\n  health {\n    lameduck {\n  }\n}", 3, "unexpected '{' inside the block"),
        ("after block", ".:53 {\n  health {\n  } more\n}", 3, "unexpected 'more' after the block"),
        ("unterminated quote", ".:53 {\n  chaos \"abc\n}\n", 2, "unterminated quoted string"),
        ("bad address", ".:53 {\n  prometheus example.com:9153\n}", 2, "is not an IP address"),
        ("address without port", ".:53 {\n  ready 127.0.0.1\n}", 2, "missing port"),
        ("bad upstream port", ".:53 {\n  forward . 1.2.3.4:99999\n}", 2, "invalid port"),
        ("bind interface", ".:53 {\n  bind eth0\n}", 2, "interface names"),
        ("bad regex", ".:53 {\n  template IN A {\n    match \"(\"\n  }\n}", 3, "could not parse regex"),
        ("bad rewrite regex", ".:53 {\n  rewrite name regex \"[\" x.org\n}", 2, "invalid regex"),
        ("bad duration", ".:53 {\n  health {\n    lameduck 5x\n  }\n}", 3, "unknown unit \"x\""),
        ("missing unit", ".:53 {\n  reload 30\n}", 2, "missing unit"),
        ("bad number", ".:53 {\n  bufsize lots\n}", 2, "invalid number"),
        ("bad snippet", "(s) {\n  errors\n", 1, "never closed"),
        ("snippet twice", "(s) {\n}\n(s) {\n}", 3, "redeclaration"),
        ("import no arg", ".:53 {\n  import\n}", 2, "import needs"),
        ("import two args", ".:53 {\n  import a b\n}", 2, "only one argument"),
        ("import two globs", "import *.a*\n", 1, "only contain one wildcard"),
        ("import missing", ".:53 {\n  errors\n  import nope.conf\n}", 3, "file to import not found"),
        ("transfer without to", ".:53 {\n  transfer\n}", 2, "give the clients allowed with 'to ADDRESS...'"),
        (
            "transfer bad to",
            ".:53 {\n  transfer {\n    to example.com\n  }\n}",
            3,
            "is not an IP address, IP:port or *",
        ),
        (
            "transfer option",
            ".:53 {\n  transfer {\n    to *\n    notify 1.2.3.4\n  }\n}",
            4,
            "unknown property 'notify'",
        ),
    ];
    for (label, text, line, needle) in rows {
        assert_err(label, text, *line, needle);
    }
}

/// Writes `files` into a fresh folder and parses its Corefile.
fn with_files(files: &[(&str, &str)]) -> (Dir, Result<Corefile, CorefileError>) {
    let d = Dir::new();
    for (rel, text) in files {
        d.write(rel, text);
    }
    let r = parse_file(&d.path("Corefile"), &opts());
    (d, r)
}

#[test]
fn imports() {
    // A file at the top level brings server blocks; one inside a block brings directives.
    let (_, r) = with_files(&[
        ("Corefile", "import blocks.conf\n.:53 {\n  import extra.conf\n  any\n}\n"),
        ("blocks.conf", "example.org {\n  errors\n}\n"),
        ("extra.conf", "errors\nlog\n"),
    ]);
    let c = r.unwrap();
    assert_eq!(keys(&c), [vec![k("example.org.", 5300)], vec![k(".", 53)]]);
    assert_eq!(names(&c.blocks[1]), ["errors", "log", "any"]);
    // Positions name the imported file.
    assert!(c.blocks[0].pos.file.ends_with("blocks.conf"));
    assert_eq!(c.blocks[1].plugins[1].pos.line, 2);
    assert!(c.blocks[1].plugins[1].pos.file.ends_with("extra.conf"));

    // A glob (in order), relative to the importing file's folder, inside and outside a block.
    let (_, r) = with_files(&[
        ("Corefile", ".:53 {\n  import custom/*.override\n}\nimport custom/*.server\n"),
        ("custom/b.server", "b.org {\n  errors\n}\n"),
        ("custom/a.server", "a.org {\n  import ../more/x.conf\n}\n"),
        ("more/x.conf", "any\n"),
        ("custom/1.override", "log\n"),
        ("custom/2.override", "errors\n"),
    ]);
    let c = r.unwrap();
    assert_eq!(keys(&c), [vec![k(".", 53)], vec![k("a.org.", 5300)], vec![k("b.org.", 5300)]]);
    assert_eq!(names(&c.blocks[0]), ["errors", "log"]);
    assert_eq!(names(&c.blocks[1]), ["any"]);

    // A glob matching nothing is fine (as the AKS and k3s Corefiles rely on).
    let (_, r) = with_files(&[("Corefile", ".:53 {\n  import custom/*.override\n  errors\n}\nimport none/*.server\n")]);
    assert_eq!(names(&r.unwrap().blocks[0]), ["errors"]);

    // An absolute path.
    let d = Dir::new();
    let abs = d.write("abs.conf", "errors\n");
    let c = d.parse(&format!(".:53 {{\n  import {}\n}}\n", abs.display())).unwrap();
    assert_eq!(names(&c.blocks[0]), ["errors"]);

    // A token after an import starts a new line even when it is on a line numbered lower.
    let (_, r) = with_files(&[(
        "Corefile",
        "(s) {\n  ttl 30\n}\n.:53 {\n  kubernetes cluster.local {\n    pods insecure\n    import s\n  }\n}\n",
    )]);
    let c = r.unwrap();
    let Plugin::Kubernetes(kube) = only(&c) else { panic!() };
    assert_eq!((kube.ttl, kube.pods), (30, Pods::Insecure));
}

#[test]
fn import_errors() {
    // Missing file: the error is at the import line.
    let (d, r) = with_files(&[("Corefile", ".:53 {\n  errors\n  import missing.conf\n}\n")]);
    let e = r.unwrap_err();
    assert_eq!(e.pos, Pos { file: d.path("Corefile"), line: 3 });
    assert!(e.message.contains("missing.conf"), "{e}");

    // An error inside an imported file names that file and its line.
    let (d, r) = with_files(&[("Corefile", ".:53 {\n  import sub/x.conf\n}\n"), ("sub/x.conf", "errors\n\nbogus\n")]);
    let e = r.unwrap_err();
    assert_eq!(e.pos, Pos { file: d.path("sub/x.conf"), line: 3 });
    assert!(e.to_string().starts_with(&format!("{}:3: unknown directive 'bogus'", d.path("sub/x.conf").display())));

    // Cycles: through two files, through a glob, through snippets.
    let (d, r) =
        with_files(&[("Corefile", "import a.conf\n"), ("a.conf", "\nimport b.conf\n"), ("b.conf", "import a.conf\n")]);
    let e = r.unwrap_err();
    assert_eq!(e.pos, Pos { file: d.path("b.conf"), line: 1 });
    assert!(e.message.contains("import cycle"), "{e}");
    let (_, r) = with_files(&[("Corefile", ".:53 {\n  import *.conf\n}\n"), ("x.conf", "import *.conf\n")]);
    assert!(r.unwrap_err().message.contains("import cycle"));
    let (d, r) = with_files(&[("Corefile", "(a) {\n  import b\n}\n(b) {\n  import a\n}\n.:53 {\n  import a\n}\n")]);
    let e = r.unwrap_err();
    assert!(e.message.contains("import cycle"), "{e}");
    assert_eq!(e.pos.file, d.path("Corefile"));

    // A file importing itself.
    let (d, r) = with_files(&[("Corefile", ".:53 {\n}\nimport Corefile\n")]);
    let e = r.unwrap_err();
    assert_eq!(e.pos, Pos { file: d.path("Corefile"), line: 3 });
    assert!(e.message.contains("import cycle"), "{e}");

    // A folder is not a file.
    let (_, r) = with_files(&[("Corefile", "import sub\n"), ("sub/x", "")]);
    assert!(r.unwrap_err().message.contains("is a directory"));

    // An unreadable top-level file names the file, without a line.
    let d = Dir::new();
    let e = parse_file(&d.path("nope"), &opts()).unwrap_err();
    assert_eq!(e.pos, Pos { file: d.path("nope"), line: 0 });
    assert!(e.to_string().starts_with(&format!("{}: cannot read", d.path("nope").display())));
}

#[test]
fn snippets() {
    let c = parse_ok(
        "(common) {\n  errors\n  cache 30\n}\n(zone) {\n  z.org {\n    any\n  }\n}\n\
         .:53 {\n  import common\n  forward . 1.1.1.1\n}\nimport zone\n",
    );
    assert_eq!(keys(&c), [vec![k(".", 53)], vec![k("z.org.", 5300)]]);
    assert_eq!(names(&c.blocks[0]), ["errors", "cache", "forward"]);
    assert_eq!(names(&c.blocks[1]), ["any"]);
    // Directives from a snippet are where the snippet was written.
    assert_eq!(c.blocks[0].plugins[1].pos.line, 3);
    // A snippet used twice is two uses.
    assert_err("snippet twice", "(c) {\n  cache\n}\n.:53 {\n  import c\n  import c\n}", 2, "only be used once");
}

#[test]
fn never_panics() {
    // Odd inputs: each parses or errors, none panics.
    let inputs = [
        "",
        "{",
        "}",
        "\"",
        "{$",
        "{$}",
        "{%%}",
        "(",
        "()",
        "() {\n}",
        "import",
        ".:53 {\nimport\n}",
        ".:53 {\n\"\"\n}",
        ".:53 {\nforward\n}",
        ".:53 {\nforward .\n}",
        ".:53 {\ntemplate\n}",
        ".:53 {\nrewrite\n}",
        ".:53 {\nrewrite stop\n}",
        ".:53 {\nrewrite name\n}",
        ".:53 {\nrewrite {\n}\n}",
        ".:53 {\nlog {\n}\n}",
        ".:53 {\ntemplate IN A {\nanswer \"{{\"\n}\n}",
        ".:53 {\nhosts {\n\n}\n}",
        "ü:53 {\n}",
        "\u{feff}.:53 {\n}",
        ".:53 {\nreload 1000000000000h\n}",
        ".:53 {\nreload -1s\n}",
        ".:53 {\ncache 99999999999999999999\n}",
        "0.0.0.0/0 {\n}",
        "::1/128 {\n}",
        "1.2.3.4/33 {\n}",
        ".:53 {\nkubernetes in-addr.arpa\n}",
    ];
    for text in inputs {
        let _ = Dir::new().parse(text);
    }
}

#[test]
fn relative_paths_anchor_to_the_corefile() {
    let d = Dir::new();
    d.write("conf/resolv.conf", "# comment\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nsearch x\n");
    let text =
        ".:53 {\n  hosts h.txt\n  forward . resolv.conf\n  kubernetes cluster.local {\n    manifests m a/b\n  }\n}";
    let c = parse_str(text, &d.path("conf/Corefile"), &opts()).unwrap();
    let b = &c.blocks[0];
    let Plugin::Hosts(h) = &b.plugins[0].plugin else { panic!() };
    assert_eq!(h.file, d.path("conf/h.txt"));
    let Plugin::Kubernetes(kube) = &b.plugins[1].plugin else { panic!() };
    assert_eq!(kube.manifests, [d.path("conf/m"), d.path("conf/a/b")]);
    let Plugin::Forward(f) = &b.plugins[2].plugin else { panic!() };
    assert_eq!(f.to, ["10.0.0.1:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
}

#[test]
fn exponential_imports_are_cut_short() {
    let mut text = String::from("(s0) {\n  errors\n}\n");
    for i in 1..40 {
        text.push_str(&format!("(s{i}) {{\n  import s{}\n  import s{}\n}}\n", i - 1, i - 1));
    }
    text.push_str(".:53 {\n  import s39\n}\n");
    let e = Dir::new().parse(&text).unwrap_err();
    assert!(e.message.contains("imports carried out"), "{e}");
}
