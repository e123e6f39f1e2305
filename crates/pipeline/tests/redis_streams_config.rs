//! The Redis Streams configurations (feature `redis`): defaults, what `validate` refuses
//! and how it names the field, and the serde form. The source and sink themselves are
//! tested against a real redis-server in the workspace's `tests/redis_streams.rs`.

#![cfg(feature = "redis")]

use std::time::Duration;

use harvester_pipeline::redis_streams::{GroupStart, StreamConfig, StreamError, StreamSinkConfig};

fn refused_field(config: &StreamConfig) -> &'static str {
    match config.validate() {
        Err(StreamError::Config { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_source_config_needs_a_stream_a_group_and_a_consumer() {
    let good = StreamConfig::new("pages", "enrich", "worker-1");
    assert_eq!(good.validate(), Ok(()));

    assert_eq!(refused_field(&StreamConfig::default()), "stream");
    assert_eq!(refused_field(&StreamConfig { group: String::new(), ..good.clone() }), "group");
    assert_eq!(refused_field(&StreamConfig { consumer: String::new(), ..good.clone() }), "consumer");
    assert_eq!(refused_field(&StreamConfig { field: String::new(), ..good }), "field");
}

#[test]
fn a_source_config_refuses_values_that_cannot_work_naming_the_field() {
    let good = StreamConfig::new("pages", "enrich", "worker-1");
    let cases = [
        (StreamConfig { read_count: 0, ..good.clone() }, "read_count"),
        (StreamConfig { read_count: usize::MAX, ..good.clone() }, "read_count"),
        (StreamConfig { block: Duration::MAX, ..good.clone() }, "block"),
        (StreamConfig { visibility_timeout: Duration::MAX, ..good.clone() }, "visibility_timeout"),
        (StreamConfig { block: Duration::ZERO, ..good.clone() }, "block"),
        (StreamConfig { visibility_timeout: Duration::from_millis(5), ..good.clone() }, "visibility_timeout"),
        (StreamConfig { max_deliveries: 0, ..good.clone() }, "max_deliveries"),
        (StreamConfig { dead_letter_stream: Some("pages".into()), ..good.clone() }, "dead_letter_stream"),
        (StreamConfig { dead_letter_stream: Some(String::new()), ..good.clone() }, "dead_letter_stream"),
        (StreamConfig { retry_base_delay: Duration::from_secs(10), ..good.clone() }, "retry_base_delay"),
        (StreamConfig { retry_base_delay: Duration::ZERO, ..good }, "retry_base_delay"),
    ];
    for (config, field) in cases {
        assert_eq!(refused_field(&config), field, "{config:?}");
        let message = config.validate().map_err(|e| e.to_string()).expect_err("refused");
        assert!(message.contains(field), "the message names the field: {message}");
    }
}

#[test]
fn the_dead_letter_stream_defaults_to_the_stream_with_a_dead_suffix() {
    let config = StreamConfig::new("pages", "enrich", "worker-1");
    assert_eq!(config.dead_letter_key(), "pages:dead");
    let custom = StreamConfig { dead_letter_stream: Some("poison".into()), ..config };
    assert_eq!(custom.dead_letter_key(), "poison");
}

#[test]
fn a_source_config_reads_from_its_serde_form_with_human_durations() {
    let json = r#"{"stream":"pages","group":"enrich","consumer":"w1","start":"new","block":"250ms","visibility_timeout":"10s","max_deliveries":3}"#;
    let config: StreamConfig = serde_json::from_str(json).expect("valid");
    assert_eq!(config.start, GroupStart::New);
    assert_eq!((config.block, config.visibility_timeout), (Duration::from_millis(250), Duration::from_secs(10)));
    assert_eq!((config.max_deliveries, config.field.as_str(), config.read_count), (3, "data", 100));
    assert!(serde_json::from_str::<StreamConfig>(r#"{"stream":"p","visibility":"1s"}"#).is_err(), "unknown fields");
}

#[test]
fn a_sink_config_refuses_an_empty_stream_and_a_zero_max_len() {
    assert_eq!(StreamSinkConfig::new("out").validate(), Ok(()));
    let refusals = [
        (StreamSinkConfig::default(), "stream"),
        (StreamSinkConfig { field: String::new(), ..StreamSinkConfig::new("out") }, "field"),
        (StreamSinkConfig { max_len: Some(0), ..StreamSinkConfig::new("out") }, "max_len"),
    ];
    for (config, expected) in refusals {
        match config.validate() {
            Err(StreamError::Config { field, .. }) => assert_eq!(field, expected),
            other => panic!("expected a refusal of {expected}, got {other:?}"),
        }
    }
}
