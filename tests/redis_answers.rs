//! The throwaway redis-server of the test support answers on loopback.

use harvester_testbed::support::Redis;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn redis_answers_ping_with_pong() {
    let redis = Redis::start();

    let mut stream = TcpStream::connect(redis.addr()).await.expect("connect to redis-server");
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").await.expect("write PING");
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).await.expect("read the reply");

    assert_eq!(&reply, b"+PONG\r\n", "{}", redis.logs());
    assert_eq!(redis.url(), format!("redis://{}", redis.addr()));
}
