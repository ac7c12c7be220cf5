//! `cache [TTL] [ZONES...] { ... }` as plugin/cache/setup.go reads it.

use std::time::Duration;

use super::CorefileError;
use super::config::*;
use super::lexer::Token;
use super::plugins::{Ctx, arg_err, lines, unknown, unsupported};
use super::syntax::RawDirective;
use super::values::{self, int};

/// CoreDNS's cache has 256 shards of `capacity / 256` entries, at least 4.
fn effective_capacity(n: i64) -> usize {
    (n / 256).max(4) as usize * 256
}

fn class(max_ttl: u64) -> CacheClass {
    CacheClass {
        capacity: effective_capacity(10_000),
        max_ttl: Duration::from_secs(max_ttl),
        min_ttl: Duration::from_secs(5),
        disabled: Vec::new(),
    }
}

/// A TTL in seconds that CoreDNS reserves 0 and below of.
fn positive_ttl(t: &Token) -> Result<Duration, CorefileError> {
    let n = int(t)?;
    if n <= 0 {
        return Err(t.err(format!("cache: cache TTL can not be zero or negative: {n}")));
    }
    Ok(Duration::from_secs(n as u64))
}

/// `success|denial CAPACITY [TTL [MINTTL]]`
fn refine(d: &RawDirective, opt: &Token, args: &[Token], c: &mut CacheClass) -> Result<(), CorefileError> {
    let Some(cap) = args.first() else { return Err(arg_err(d, opt, "CAPACITY [TTL [MINTTL]]")) };
    if args.len() > 3 {
        return Err(arg_err(d, opt, "CAPACITY [TTL [MINTTL]]"));
    }
    c.capacity = effective_capacity(int(cap)?);
    if let Some(t) = args.get(1) {
        c.max_ttl = positive_ttl(t)?;
    }
    if let Some(t) = args.get(2) {
        let n = int(t)?;
        if n < 0 {
            return Err(t.err(format!("cache: cache min TTL can not be negative: {n}")));
        }
        c.min_ttl = Duration::from_secs(n as u64);
    }
    Ok(())
}

pub(crate) fn parse(d: &RawDirective, cx: &Ctx) -> Result<Cache, CorefileError> {
    let mut success = class(3600);
    let mut denial = class(1800);
    let mut zone_args: &[Token] = &d.args;
    // A first argument that is a number is the TTL, otherwise it is a zone.
    if let Some(first) = d.args.first()
        && first.text.parse::<i64>().is_ok()
    {
        let ttl = positive_ttl(first)?;
        success.max_ttl = ttl;
        denial.max_ttl = ttl;
        zone_args = &d.args[1..];
    }
    let zones = values::zones_or_block(zone_args, cx.zones)?;
    let mut cache = Cache {
        zones,
        success,
        denial,
        prefetch: None,
        serve_stale: None,
        servfail: Duration::from_secs(5),
        keepttl: false,
    };
    for line in lines(d) {
        let (opt, args) = (&line[0], &line[1..]);
        match opt.as_str() {
            "success" => refine(d, opt, args, &mut cache.success)?,
            "denial" => refine(d, opt, args, &mut cache.denial)?,
            "prefetch" => cache.prefetch = Some(prefetch(d, opt, args)?),
            "serve_stale" => cache.serve_stale = Some(serve_stale(d, opt, args)?),
            "serve_stale_policy" => return Err(unsupported(d, opt)),
            "servfail" => {
                let [t] = args else { return Err(arg_err(d, opt, "one duration")) };
                let dur = values::duration(t)?;
                if dur > Duration::from_secs(300) {
                    return Err(t.err("cache: caching SERVFAIL responses over 5 minutes is not permitted"));
                }
                cache.servfail = dur;
            }
            "disable" => {
                let Some((which, zones)) = args.split_first() else {
                    return Err(arg_err(d, opt, "success|denial [ZONES...]"));
                };
                let mut list = Vec::new();
                for z in zones {
                    if !values::is_domain_name(&z.text) {
                        return Err(z.err(format!("cache: invalid disabled zone: {}", z.text)));
                    }
                    list.push(values::fqdn(&z.text));
                }
                if list.is_empty() {
                    list.push(".".into());
                }
                match which.as_str() {
                    "success" => cache.success.disabled = list,
                    "denial" => cache.denial.disabled = list,
                    _ => return Err(which.err("cache: cache type for disable must be \"success\" or \"denial\"")),
                }
            }
            "keepttl" if args.is_empty() => cache.keepttl = true,
            "keepttl" => return Err(arg_err(d, opt, "no arguments")),
            _ => return Err(unknown(d, opt)),
        }
    }
    Ok(cache)
}

/// `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]`
fn prefetch(d: &RawDirective, opt: &Token, args: &[Token]) -> Result<Prefetch, CorefileError> {
    if args.is_empty() || args.len() > 3 {
        return Err(arg_err(d, opt, "AMOUNT [[DURATION] [PERCENTAGE%]]"));
    }
    let amount = int(&args[0])?;
    let amount = u32::try_from(amount)
        .map_err(|_| args[0].err(format!("cache: prefetch amount should be positive: {amount}")))?;
    let mut p = Prefetch { amount, duration: Duration::from_secs(60), percentage: 10 };
    if let Some(t) = args.get(1) {
        p.duration = values::duration(t)?;
    }
    if let Some(t) = args.get(2) {
        let Some(num) = t.text.strip_suffix('%') else {
            return Err(t.err(format!("cache: last character of percentage should be `%`, but is: \"{}\"", t.text)));
        };
        let n: i64 = num.parse().map_err(|_| t.err(format!("cache: invalid percentage \"{}\"", t.text)))?;
        if !(10..=90).contains(&n) {
            return Err(t.err(format!("cache: percentage should fall in range [10, 90]: {n}")));
        }
        p.percentage = n as u8;
    }
    Ok(p)
}

/// `serve_stale [DURATION] [immediate|verify]`; the further arguments of
/// CoreDNS (verify timeout, response TTL, failure recheck) are not
/// implemented by clusterdns.
fn serve_stale(d: &RawDirective, opt: &Token, args: &[Token]) -> Result<ServeStale, CorefileError> {
    let mut s = ServeStale { duration: Duration::from_secs(3600), mode: StaleMode::Immediate };
    if let Some(t) = args.first() {
        s.duration = values::duration(t)?;
    }
    if let Some(t) = args.get(1) {
        s.mode = match t.text.to_ascii_lowercase().as_str() {
            "immediate" => StaleMode::Immediate,
            "verify" => StaleMode::Verify,
            m => return Err(t.err(format!("cache: invalid value for serve_stale refresh mode: {m}"))),
        };
    }
    if let Some(t) = args.get(2) {
        if args.len() > 5 {
            return Err(arg_err(d, opt, "[DURATION] [immediate|verify]"));
        }
        return Err(t.err(
            "cache: serve_stale's verify timeout, response TTL and failure recheck are not supported by clusterdns",
        ));
    }
    Ok(s)
}
