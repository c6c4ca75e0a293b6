//! `pwn bench transport`: round trips on loopback over a QUIC stream, over QUIC datagrams, and
//! over a plain tokio UDP echo (the floor), interleaved ping by ping in one run so that machine
//! noise hits all three alike; then one-way message throughput on a stream.
//!
//! The echo servers run on their own thread with a single-threaded tokio runtime, and the client
//! on another, as two processes on one machine would: each side's work stays on its thread.

use crate::stats::{quantile, round3};
use clap::Args;
use pwn_net::{ClientHello, Conn, NetClient, NetServer, ServerTls, ServiceIdentity, TransportConfig};
use pwn_proto::{Message, PeerRole, Ping};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Flags of `pwn bench transport`.
#[derive(Args, Debug)]
pub struct BenchTransportArgs {
    /// Round trips measured on each path.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pings: u32,
    /// Messages sent one way to measure throughput.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    messages: u32,
    /// Run the echo servers on the client's thread instead of their own: measures the CPU
    /// cost of both ends together, without cross-thread wake-ups.
    #[arg(long)]
    same_thread: bool,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Marks the last message of the throughput run.
const THROUGHPUT_END: u64 = u64::MAX;
/// A datagram round trip slower than this counts as lost.
const DATAGRAM_TIMEOUT: Duration = Duration::from_millis(200);

async fn echo_server(mut server: NetServer) {
    while let Some(incoming) = server.accept().await {
        tokio::spawn(async move {
            let Ok(Conn { tx, mut rx, mut datagrams, .. }) = incoming.handshake().await else { return };
            let dtx = tx.clone();
            tokio::spawn(async move {
                while let Ok(Message::Ping(p)) = datagrams.recv().await {
                    let _ = dtx.send_datagram(&Message::Pong(p));
                }
            });
            while let Ok(Some(Message::Ping(p))) = rx.recv().await {
                // Throughput messages are counted, not answered; pings and the end marker are.
                if (p.sent_us != 0 || p.seq == THROUGHPUT_END) && tx.send(&Message::Pong(p)).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn udp_echo(socket: UdpSocket) {
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let _ = socket.send_to(&buf[..n], from).await;
    }
}

struct Figures {
    stream_us: Vec<f64>,
    datagram_us: Vec<f64>,
    udp_us: Vec<f64>,
    datagrams_lost: u32,
    messages_per_s: f64,
}

/// Starts both echo servers on their own thread and runtime, as a separate process would be,
/// and returns their addresses.
fn spawn_servers(dir: &std::path::Path) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let tls = ServerTls::DevCa { dir: dir.to_path_buf() };
    let cert = pwn_net::tls::server_cert(&tls)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => return drop(ready_tx.send(Err(anyhow::Error::from(e)))),
        };
        runtime.block_on(async move {
            let loopback: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
            let started = async {
                let server = NetServer::bind(
                    loopback,
                    &cert,
                    &TransportConfig::default(),
                    ServiceIdentity { sim_digest: 0, tick_hz: 30 },
                )?;
                let udp = UdpSocket::bind(loopback).await?;
                anyhow::Ok((server, udp))
            }
            .await;
            match started {
                Ok((server, udp)) => {
                    let addrs = (server.local_addr(), udp.local_addr());
                    let _ = ready_tx.send(match addrs {
                        (Ok(a), Ok(b)) => Ok((a, b)),
                        (Err(e), _) | (_, Err(e)) => Err(e.into()),
                    });
                    tokio::join!(echo_server(server), udp_echo(udp));
                }
                Err(e) => drop(ready_tx.send(Err(e))),
            }
        });
    });
    ready_rx.recv()?
}

async fn measure(args: &BenchTransportArgs) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let cfg = TransportConfig::default();
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let (addr, udp_addr) = if args.same_thread {
        let tls = ServerTls::DevCa { dir: dir.path().to_path_buf() };
        let server = NetServer::bind(
            loopback,
            &pwn_net::tls::server_cert(&tls)?,
            &cfg,
            ServiceIdentity { sim_digest: 0, tick_hz: 30 },
        )?;
        let udp_server = UdpSocket::bind(loopback).await?;
        let addrs = (server.local_addr()?, udp_server.local_addr()?);
        tokio::spawn(echo_server(server));
        tokio::spawn(udp_echo(udp_server));
        addrs
    } else {
        spawn_servers(dir.path())?
    };
    let udp = UdpSocket::bind(loopback).await?;
    udp.connect(udp_addr).await?;

    let client = NetClient::new(loopback, &pwn_net::tls::dev_ca_cert(dir.path())?, &cfg)?;
    let mut conn =
        client.connect(addr, "localhost", &ClientHello::new(PeerRole::Tool, 0, "pwn bench transport")).await?;
    let origin = Instant::now();
    let mut f = Figures {
        stream_us: Vec::new(),
        datagram_us: Vec::new(),
        udp_us: Vec::new(),
        datagrams_lost: 0,
        messages_per_s: 0.0,
    };
    let mut udp_buf = [0u8; 64];
    let warmup = args.pings / 10;
    for seq in 0..u64::from(args.pings + warmup) {
        let record = seq >= u64::from(warmup);
        let ping = Ping { seq, sent_us: origin.elapsed().as_micros() as u64 + 1 };
        let payload = pwn_proto::encode_datagram(&Message::Ping(ping))?;

        let t = Instant::now();
        udp.send(&payload).await?;
        udp.recv(&mut udp_buf).await?;
        let udp_us = t.elapsed().as_secs_f64() * 1e6;

        let t = Instant::now();
        conn.tx.send_datagram(&Message::Ping(ping))?;
        let datagram = loop {
            match tokio::time::timeout(DATAGRAM_TIMEOUT, conn.datagrams.recv()).await {
                Ok(Ok(Message::Pong(p))) if p.seq == seq => break Some(t.elapsed().as_secs_f64() * 1e6),
                Ok(Ok(_)) => continue, // a late answer to an earlier, timed-out ping
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => break None,
            }
        };

        let t = Instant::now();
        conn.tx.send(&Message::Ping(ping)).await?;
        match conn.rx.recv().await? {
            Some(Message::Pong(p)) if p.seq == seq => {}
            other => anyhow::bail!("unexpected answer on the stream: {other:?}"),
        }
        let stream_us = t.elapsed().as_secs_f64() * 1e6;
        if record {
            f.udp_us.push(udp_us);
            f.stream_us.push(stream_us);
            match datagram {
                Some(us) => f.datagram_us.push(us),
                None => f.datagrams_lost += 1,
            }
        }
    }

    let t = Instant::now();
    for seq in 0..u64::from(args.messages) {
        conn.tx.send(&Message::Ping(Ping { seq, sent_us: 0 })).await?;
    }
    conn.tx.send(&Message::Ping(Ping { seq: THROUGHPUT_END, sent_us: 0 })).await?;
    loop {
        if let Some(Message::Pong(p)) = conn.rx.recv().await?
            && p.seq == THROUGHPUT_END
        {
            break;
        }
    }
    f.messages_per_s = f64::from(args.messages) / t.elapsed().as_secs_f64();
    Ok(f)
}

/// Runs the benchmark.
pub fn bench_transport(args: &BenchTransportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    eprintln!(
        "pwn bench transport: {} round trips per path on loopback, interleaved, servers on {}; then {} messages one way",
        args.pings,
        if args.same_thread { "the client's thread" } else { "their own thread" },
        args.messages
    );
    let f = runtime.block_on(measure(args))?;
    let p = |v: &[f64], q| quantile(v, q);
    let ratio = p(&f.datagram_us, 0.5) / p(&f.udp_us, 0.5);
    println!("                 p50 us    p99 us");
    println!("QUIC stream    {:>8.1}  {:>8.1}", p(&f.stream_us, 0.5), p(&f.stream_us, 0.99));
    println!(
        "QUIC datagram  {:>8.1}  {:>8.1}   ({} lost)",
        p(&f.datagram_us, 0.5),
        p(&f.datagram_us, 0.99),
        f.datagrams_lost
    );
    println!("plain UDP      {:>8.1}  {:>8.1}", p(&f.udp_us, 0.5), p(&f.udp_us, 0.99));
    println!("datagram / UDP at p50: {ratio:.2}");
    println!("stream throughput one way: {:.0} messages/s", f.messages_per_s);
    if args.json {
        let out = serde_json::json!({
            "stream_rtt_us_p50": round3(p(&f.stream_us, 0.5)),
            "stream_rtt_us_p99": round3(p(&f.stream_us, 0.99)),
            "datagram_rtt_us_p50": round3(p(&f.datagram_us, 0.5)),
            "datagram_rtt_us_p99": round3(p(&f.datagram_us, 0.99)),
            "udp_rtt_us_p50": round3(p(&f.udp_us, 0.5)),
            "udp_rtt_us_p99": round3(p(&f.udp_us, 0.99)),
            "ratio_datagram_vs_udp": round3(ratio),
            "datagrams_lost": f.datagrams_lost,
            "stream_messages_per_s": f.messages_per_s.round(),
            "same_thread": args.same_thread,
        });
        println!("{out}");
    }
    Ok(())
}
