//! Every configuration a user loads from a file (TOML through serde, as a host application
//! would), fed random assignments to its own keys: numbers at and past every extreme,
//! durations from a nanosecond to centuries, wrong types, NaN and infinities. Loading
//! either fails with serde's error or yields a value that `validate` accepts or refuses by
//! name; nothing panics. A bounded fuzz that runs in CI with the rest.

use std::fmt::Debug;

use harvester::pipeline::batch::BatchConfig;
use harvester::proxypool::PoolConfig;
use harvester::proxypool::health_check::HealthCheckConfig;
use harvester::resilience::breaker::BreakerConfig;
use harvester::resilience::bulkhead::BulkheadConfig;
use harvester::resilience::rate_limit::RateLimitConfig;
use harvester::resilience::retry::RetryConfig;
use harvester::scaler::{
    CostConfig, DriverConfig, HpaConfig, MetricSpec, PredictiveConfig, ReactiveConfig, ScheduleConfig,
};
use harvester_redis::RedisConfig;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Values for any key: the extremes of every type the configurations use, and wrong types.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "3",
    "0.5",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "2147483647",
    "-2147483648",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "\"0s\"",
    "\"1ns\"",
    "\"10ms\"",
    "\"1day\"",
    "\"584years\"",
    "\"18446744073709551615s\"",
    "\"-1s\"",
    "\"\"",
    "\"x\"",
    "true",
    "[]",
    "[1, 2]",
    "{}",
    "\"redis://127.0.0.1:1\"",
    "\"redis+unix:///tmp/r.sock?pass=QVWXZ\"",
];

/// Every dotted path in `value`, tables and leaves alike.
fn keys_of(value: &toml::Value) -> Vec<String> {
    fn walk(prefix: &str, value: &toml::Value, keys: &mut Vec<String>) {
        if let toml::Value::Table(table) = value {
            for (key, value) in table {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                keys.push(path.clone());
                walk(&path, value, keys);
            }
        }
    }
    let mut keys = Vec::new();
    walk("", value, &mut keys);
    keys
}

/// `base` with `value` (TOML text) at the dotted `path`; a value that is not TOML is
/// written as the string it is.
fn set(base: &mut toml::Value, path: &str, value: &str) {
    let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let mut at = base;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let toml::Value::Table(table) = at else { return };
        if parts.peek().is_none() {
            table.insert(part.to_owned(), value);
            return;
        }
        at = table.entry(part.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
}

/// A working `sample` of a configuration with a few keys given random values.
fn variant<T: Serialize>(sample: &T) -> impl Strategy<Value = toml::Value> + use<T> {
    let base = toml::Value::try_from(sample).expect("a sample serializes");
    let keys = keys_of(&base);
    prop::collection::vec((prop::sample::select(keys), prop::sample::select(VALUES)), 0..6).prop_map(move |pairs| {
        let mut document = base.clone();
        for (key, value) in pairs {
            set(&mut document, &key, value);
        }
        document
    })
}

/// Loads `document` as `T` and validates it: serde's refusal, `validate`'s or acceptance.
/// Returns the text of `validate`'s refusal.
fn load<T: DeserializeOwned + Debug, E: ToString>(
    document: toml::Value,
    validate: impl Fn(&T) -> Result<(), E>,
) -> Option<String> {
    let config: T = document.try_into().ok()?;
    validate(&config).err().map(|e| e.to_string())
}

macro_rules! loaders {
    ($($name:ident: $ty:ty = $sample:expr => $validate:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            $(
                #[test]
                fn $name(document in variant::<$ty>(&$sample)) {
                    if let Some(refusal) = load::<$ty, _>(document, $validate) {
                        prop_assert!(!refusal.is_empty());
                        prop_assert!(!refusal.contains("QVWXZ"), "a secret in {refusal:?}");
                    }
                }
            )*
        }
    };
}

loaders! {
    pool: PoolConfig = PoolConfig::default() => PoolConfig::validate;
    health_check: HealthCheckConfig = HealthCheckConfig { test_urls: vec!["http://127.0.0.1:9/".into()], ..Default::default() }
        => HealthCheckConfig::validate;
    batch: BatchConfig = BatchConfig::default() => BatchConfig::validate;
    breaker: BreakerConfig = BreakerConfig::default() => BreakerConfig::validate;
    bulkhead: BulkheadConfig = BulkheadConfig::default() => BulkheadConfig::validate;
    rate_limit: RateLimitConfig = RateLimitConfig::default() => RateLimitConfig::validate;
    retry: RetryConfig = RetryConfig::default() => RetryConfig::validate;
    driver: DriverConfig = DriverConfig::default() => DriverConfig::validate;
    hpa: HpaConfig = HpaConfig::new([MetricSpec::average_value("load", 100.0)]) => HpaConfig::validate;
    reactive: ReactiveConfig = ReactiveConfig::default() => ReactiveConfig::validate;
    predictive: PredictiveConfig = PredictiveConfig::new("arrivals", 10.0) => PredictiveConfig::validate;
    schedule: ScheduleConfig = ScheduleConfig::default() => ScheduleConfig::validate;
    cost: CostConfig = CostConfig::default() => CostConfig::validate;
    redis: RedisConfig = RedisConfig::default() => RedisConfig::validate;
}

/// Redis settings are where a password sits in a config file: whatever else is wrong,
/// neither the refusal nor the value's Debug shows it.
#[test]
fn a_redis_password_never_shows_in_what_loading_says() {
    for text in [
        "url = \"redis://u:QVWXZ@127.0.0.1:1\"\nconnect_timeout = \"0s\"\n",
        "url = \"redis+unix:///tmp/r.sock?pass=QVWXZ\"\nresponse_timeout = \"3days\"\n",
        "url = \"unix:///tmp/r.sock?password=QVWXZ&db=x\"\n",
        "url = \"redis://127.0.0.1:1\"\npassword = \"QVWXZ\"\ndatabase = -1\n",
    ] {
        let config: RedisConfig = toml::from_str(text).expect("loads");
        let refusal = config.validate().expect_err("refused").to_string();
        for said in [refusal, format!("{config:?}"), format!("{config}")] {
            assert!(!said.contains("QVWXZ"), "{said}");
        }
    }
}
