//! The socket component against real peers on loopback (std::net threads in this process).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::*;
use sha2::{Digest, Sha256};
use wasmtime::component::ResourceAny;

/// Deterministic pseudo-random bytes (xorshift), so both sides can hash what they expect.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn is_state(e: &SocketError, want: SocketState) -> bool {
    matches!(e, SocketError::InvalidState(StateError { state, .. }) if *state == want)
}

#[test]
fn tcp_client_moves_10_mb_each_way() {
    const SIZE: usize = 10 * 1024 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sending = thread::spawn(move || {
            writer.write_all(&pattern(SIZE, 2)).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        (&stream).read_to_end(&mut got).unwrap();
        sending.join().unwrap();
        (got.len(), sha(&got))
    });

    let mut g = SocketGuest::new();
    let s = g.tcp4();
    g.connect(s, &addr("127.0.0.1", port)).unwrap();
    assert_eq!(g.state(s), SocketState::Connected);
    let out = pattern(SIZE, 1);
    assert_eq!(g.send(s, &out).unwrap(), SIZE as u64);
    g.shutdown(s, ShutdownType::Send).unwrap();
    let mut got = Vec::with_capacity(SIZE);
    loop {
        let chunk = g.receive(s, 65536).unwrap();
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    g.close(s).unwrap();
    assert_eq!(g.state(s), SocketState::Closed);
    let (server_len, server_hash) = server.join().unwrap();
    assert_eq!(server_len, SIZE);
    assert_eq!(
        server_hash,
        sha(&out),
        "server received what the guest sent"
    );
    assert_eq!(got.len(), SIZE);
    assert_eq!(
        sha(&got),
        sha(&pattern(SIZE, 2)),
        "guest received what the server sent"
    );
}

#[test]
fn tcp_server_accepts_two_clients_in_turn_and_echoes() {
    let mut g = SocketGuest::new();
    let l = g.tcp4();
    g.bind(l, &addr("127.0.0.1", 0)).unwrap();
    g.listen(l, 16).unwrap();
    assert_eq!(g.state(l), SocketState::Listening);
    let port = g.local_address(l).unwrap().port;
    assert_ne!(port, 0);

    for i in 0..2 {
        let client = thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let msg = format!("hello {i}");
            c.write_all(msg.as_bytes()).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut echo = String::new();
            c.read_to_string(&mut echo).unwrap();
            (msg, echo, c.local_addr().unwrap())
        });
        let conn = g.accept(l).unwrap();
        assert_eq!(g.state(conn), SocketState::Connected);
        let mut got = Vec::new();
        loop {
            let chunk = g.receive(conn, 1024).unwrap();
            if chunk.is_empty() {
                break;
            }
            got.extend(chunk);
        }
        g.send(conn, &got).unwrap();
        let peer = g.peer_address(conn).unwrap();
        g.close(conn).unwrap();
        g.drop_socket(conn);
        let (msg, echo, client_addr) = client.join().unwrap();
        assert_eq!(echo, msg);
        assert_eq!(peer.host, client_addr.ip().to_string());
        assert_eq!(peer.port, client_addr.port());
    }
}

#[test]
fn source_address_is_the_bound_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.write_all(b"ok").unwrap();
        peer
    });
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    g.bind(s, &addr("127.0.10.7", 0)).unwrap();
    assert_eq!(g.state(s), SocketState::Bound);
    g.connect(s, &addr("127.0.0.1", port)).unwrap();
    let local = g.local_address(s).unwrap();
    assert_eq!(g.receive(s, 16).unwrap(), b"ok");
    let peer = server.join().unwrap();
    assert_eq!(
        peer.ip().to_string(),
        "127.0.10.7",
        "the server sees the bound source address"
    );
    assert_eq!(local.host, "127.0.10.7");
    assert_eq!(local.port, peer.port());
    let seen = g.peer_address(s).unwrap();
    assert_eq!((seen.host.as_str(), seen.port), ("127.0.0.1", port));
}

fn udp_round_trip(family: AddressFamily, ip: &str) {
    let native = UdpSocket::bind((ip, 0)).unwrap();
    native
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let native_addr = native.local_addr().unwrap();
    let mut g = SocketGuest::new();
    let s = g.create(family, Protocol::Udp).unwrap();
    g.bind(s, &addr(ip, 0)).unwrap();
    let local = g.local_address(s).unwrap();

    assert_eq!(
        g.send_to(s, b"from guest", &addr(ip, native_addr.port()))
            .unwrap(),
        10
    );
    let mut buf = [0u8; 64];
    let (n, from) = native.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from guest");
    assert_eq!(from.ip().to_string(), local.host);
    assert_eq!(from.port(), local.port);

    native.send_to(b"from native", from).unwrap();
    let (data, sender) = g.receive_from(s, 1500).unwrap();
    assert_eq!(data, b"from native");
    assert_eq!(sender.host, native_addr.ip().to_string());
    assert_eq!(sender.port, native_addr.port());

    // Truncation to max-bytes, as recvfrom does.
    native.send_to(b"0123456789", from).unwrap();
    assert_eq!(g.receive_from(s, 4).unwrap().0, b"0123");

    // A connected UDP socket: send and receive without addresses.
    let c = g.create(family, Protocol::Udp).unwrap();
    g.connect(c, &addr(ip, native_addr.port())).unwrap();
    assert_eq!(g.state(c), SocketState::Connected);
    g.send(c, b"connected").unwrap();
    let (n, from) = native.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"connected");
    native.send_to(b"reply", from).unwrap();
    assert_eq!(g.receive(c, 100).unwrap(), b"reply");
    assert_eq!(g.peer_address(c).unwrap().port, native_addr.port());
}

#[test]
fn udp_send_to_and_receive_from_both_ways() {
    udp_round_trip(AddressFamily::Ipv4, "127.0.0.1");
}

#[test]
fn udp_implicit_bind_on_first_send() {
    let native = UdpSocket::bind("127.0.0.1:0").unwrap();
    native
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut g = SocketGuest::new();
    let s = g.udp4();
    g.send_to(
        s,
        b"x",
        &addr("127.0.0.1", native.local_addr().unwrap().port()),
    )
    .unwrap();
    assert_eq!(g.state(s), SocketState::Bound);
    let mut buf = [0u8; 8];
    let (_, from) = native.recv_from(&mut buf).unwrap();
    assert_eq!(g.local_address(s).unwrap().port, from.port());
}

#[test]
fn ipv6_tcp_and_udp_on_loopback() {
    let (port, server) = integration_tests::one_connection_peer("[::1]:0", |mut s, peer| {
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        peer
    });
    let mut g = SocketGuest::new();
    let s = g.create(AddressFamily::Ipv6, Protocol::Tcp).unwrap();
    assert_eq!(g.family(s), AddressFamily::Ipv6);
    g.connect(s, &addr("[::1]", port)).unwrap();
    g.send(s, b"ping").unwrap();
    assert_eq!(g.receive(s, 4).unwrap(), b"ping");
    let peer = server.join().unwrap();
    assert_eq!(peer.ip().to_string(), "::1");
    assert_eq!(g.local_address(s).unwrap().host, "::1");

    udp_round_trip(AddressFamily::Ipv6, "::1");
}

#[test]
fn connection_refused_on_a_closed_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    assert!(matches!(
        g.connect(s, &addr("127.0.0.1", port)),
        Err(SocketError::ConnectionRefused)
    ));
    // The socket is usable again after a failed connect.
    assert_eq!(g.state(s), SocketState::Created);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    g.connect(s, &addr("127.0.0.1", l.local_addr().unwrap().port()))
        .unwrap();
}

/// A receive on `s` that must end as `timeout(receive)`; how long it took.
fn receive_timing_out(g: &mut SocketGuest, s: ResourceAny, max: u32) -> Duration {
    let start = Instant::now();
    let r = g.receive(s, max);
    let elapsed = start.elapsed();
    assert!(
        matches!(&r, Err(SocketError::Timeout(op)) if op == "receive"),
        "{r:?}"
    );
    elapsed
}

#[test]
fn read_timeout_fires_on_a_silent_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    g.connect(s, &addr("127.0.0.1", port)).unwrap();
    g.set_read_timeout(s, 300).unwrap();
    let elapsed = receive_timing_out(&mut g, s, 100);
    assert!(
        elapsed >= Duration::from_millis(300),
        "fired early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1300),
        "fired late: {elapsed:?}"
    );

    // Timeout 0 is non-blocking.
    g.set_read_timeout(s, 0).unwrap();
    assert!(matches!(g.receive(s, 100), Err(SocketError::WouldBlock)));
    hold.join().unwrap();
}

/// Waits share one clock pollable per instance: a wait reuses an earlier wait's timer when it
/// fires no later than its own deadline. Such a timer must only wake it early, never end it,
/// and a timer later than a new, shorter deadline must not be reused.
#[test]
fn waits_keep_their_own_deadlines_with_a_shared_timer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The peer writes each byte it is told to, after the delay it is told.
    let (tell, orders) = std::sync::mpsc::channel::<(u64, u8)>();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        for (delay_ms, byte) in orders {
            thread::sleep(Duration::from_millis(delay_ms));
            s.write_all(&[byte]).unwrap();
        }
    });
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    g.connect(s, &addr("127.0.0.1", port)).unwrap();

    // A wait with a 2 s bound leaves a timer about 2 s away.
    g.set_read_timeout(s, 2000).unwrap();
    tell.send((50, b'a')).unwrap();
    assert_eq!(g.receive(s, 10).unwrap(), b"a");

    // A shorter bound must not wait for that timer.
    g.set_read_timeout(s, 100).unwrap();
    let elapsed = receive_timing_out(&mut g, s, 10);
    assert!(elapsed >= Duration::from_millis(100), "early: {elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(1500),
        "waited for the earlier 2 s timer: {elapsed:?}"
    );

    // A wait with a 600 ms bound leaves a timer 600 ms after it began.
    g.set_read_timeout(s, 600).unwrap();
    tell.send((10, b'b')).unwrap();
    let began = Instant::now();
    assert_eq!(g.receive(s, 10).unwrap(), b"b");
    // The next wait starts 300 ms later with the same bound, so its deadline is about 900 ms
    // after `began`; the earlier timer fires at about 600 ms, the byte comes at about 750 ms.
    thread::sleep(Duration::from_millis(300).saturating_sub(began.elapsed()));
    tell.send((450, b'c')).unwrap();
    let r = g.receive(s, 10);
    assert_eq!(
        r.unwrap(),
        b"c",
        "the earlier wait's timer ended this wait early"
    );
    drop(tell);
    peer.join().unwrap();
}

#[test]
fn accept_times_out_without_clients() {
    let mut g = SocketGuest::new();
    let l = g.tcp4();
    g.bind(l, &addr("127.0.0.1", 0)).unwrap();
    g.listen(l, 4).unwrap();
    g.set_read_timeout(l, 100).unwrap();
    let start = Instant::now();
    assert!(matches!(g.accept(l), Err(SocketError::Timeout(op)) if op == "accept"));
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn host_names_resolve_or_fail_typed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut g = SocketGuest::new();
    let ips = g.resolve("localhost", 5000).unwrap();
    assert!(
        ips.iter().any(|ip| ip == "127.0.0.1" || ip == "::1"),
        "{ips:?}"
    );
    let s = g.tcp4();
    g.connect(s, &addr("localhost", port)).unwrap();
    assert_eq!(g.peer_address(s).unwrap().host, "127.0.0.1");

    // Names that do not exist or are never answered come from the test name service, so no
    // query leaves the process.
    let mut g = SocketGuest::with_test_dns();
    let s = g.tcp4();
    let r = g.connect(s, &addr("no-such-host.invalid", 80));
    assert!(matches!(r, Err(SocketError::NameUnresolvable(_))), "{r:?}");
    assert!(matches!(
        g.resolve("no-such-host.invalid", 5000),
        Err(SocketError::NameUnresolvable(_))
    ));
    let start = Instant::now();
    let r = g.resolve("unanswered.test", 200);
    assert!(matches!(&r, Err(SocketError::Timeout(_))), "{r:?}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn malformed_addresses_are_invalid_input() {
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    for bad in [
        "300.1.1.1",
        "1.2.3",
        "",
        "127.0.0.1:80",
        "not an address",
        "::1",
        "[127.0.0.1",
    ] {
        let r = g.bind(s, &addr(bad, 0));
        assert!(
            matches!(r, Err(SocketError::InvalidInput(_))),
            "bind {bad:?}: {r:?}"
        );
    }
    for bad in ["300.1.1.1", "1.2.3", "", "::1", "a b"] {
        let r = g.connect(s, &addr(bad, 80));
        assert!(
            matches!(r, Err(SocketError::InvalidInput(_))),
            "connect {bad:?}: {r:?}"
        );
    }
    assert!(matches!(
        g.connect(s, &addr("127.0.0.1", 0)),
        Err(SocketError::InvalidInput(_))
    ));
    assert!(matches!(
        g.resolve("", 100),
        Err(SocketError::InvalidInput(_))
    ));
    assert_eq!(
        g.state(s),
        SocketState::Created,
        "bad input changes nothing"
    );
    let u = g.udp4();
    assert!(matches!(
        g.send_to(u, &vec![0; 70_000], &addr("127.0.0.1", 9)),
        Err(SocketError::InvalidInput(_))
    ));
    assert!(matches!(
        g.receive_from(u, 0),
        Err(SocketError::InvalidState(_))
    ));
}

#[test]
fn illegal_state_transitions_name_the_state() {
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    assert!(
        is_state(&g.listen(s, 8).unwrap_err(), SocketState::Created),
        "listen before bind"
    );
    assert!(
        is_state(&g.accept(s).unwrap_err(), SocketState::Created),
        "accept before listen"
    );
    assert!(
        is_state(&g.send(s, b"x").unwrap_err(), SocketState::Created),
        "send unconnected"
    );
    assert!(
        is_state(&g.receive(s, 1).unwrap_err(), SocketState::Created),
        "receive unconnected"
    );
    assert!(is_state(
        &g.shutdown(s, ShutdownType::Both).unwrap_err(),
        SocketState::Created
    ));
    assert!(is_state(
        &g.local_address(s).unwrap_err(),
        SocketState::Created
    ));
    assert!(is_state(
        &g.peer_address(s).unwrap_err(),
        SocketState::Created
    ));

    g.bind(s, &addr("127.0.0.1", 0)).unwrap();
    assert!(
        is_state(
            &g.bind(s, &addr("127.0.0.1", 0)).unwrap_err(),
            SocketState::Bound
        ),
        "bind twice"
    );
    assert!(
        is_state(&g.accept(s).unwrap_err(), SocketState::Bound),
        "accept before listen"
    );
    assert!(is_state(&g.send(s, b"x").unwrap_err(), SocketState::Bound));
    assert!(is_state(
        &g.peer_address(s).unwrap_err(),
        SocketState::Bound
    ));

    g.listen(s, 8).unwrap();
    assert!(
        is_state(&g.listen(s, 8).unwrap_err(), SocketState::Listening),
        "listen twice"
    );
    assert!(is_state(
        &g.connect(s, &addr("127.0.0.1", 80)).unwrap_err(),
        SocketState::Listening
    ));
    assert!(is_state(
        &g.send(s, b"x").unwrap_err(),
        SocketState::Listening
    ));
    assert!(is_state(
        &g.receive(s, 1).unwrap_err(),
        SocketState::Listening
    ));
    assert!(is_state(
        &g.bind(s, &addr("127.0.0.1", 0)).unwrap_err(),
        SocketState::Listening
    ));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = g.tcp4();
    g.connect(c, &addr("127.0.0.1", listener.local_addr().unwrap().port()))
        .unwrap();
    assert!(is_state(
        &g.connect(c, &addr("127.0.0.1", 80)).unwrap_err(),
        SocketState::Connected
    ));
    assert!(is_state(
        &g.listen(c, 8).unwrap_err(),
        SocketState::Connected
    ));
    assert!(is_state(
        &g.bind(c, &addr("127.0.0.1", 0)).unwrap_err(),
        SocketState::Connected
    ));

    for sock in [s, c] {
        g.close(sock).unwrap();
        assert_eq!(g.state(sock), SocketState::Closed);
        assert!(
            is_state(&g.close(sock).unwrap_err(), SocketState::Closed),
            "close twice"
        );
        assert!(is_state(
            &g.send(sock, b"x").unwrap_err(),
            SocketState::Closed
        ));
        assert!(is_state(
            &g.receive(sock, 1).unwrap_err(),
            SocketState::Closed
        ));
        assert!(is_state(&g.accept(sock).unwrap_err(), SocketState::Closed));
        assert!(is_state(
            &g.connect(sock, &addr("127.0.0.1", 80)).unwrap_err(),
            SocketState::Closed
        ));
        assert!(is_state(
            &g.bind(sock, &addr("127.0.0.1", 0)).unwrap_err(),
            SocketState::Closed
        ));
        assert!(is_state(
            &g.set_read_timeout(sock, 5).unwrap_err(),
            SocketState::Closed
        ));
        assert!(is_state(
            &g.set_hop_limit(sock, 5).unwrap_err(),
            SocketState::Closed
        ));
        assert!(is_state(
            &g.local_address(sock).unwrap_err(),
            SocketState::Closed
        ));
    }

    // Protocol mismatches are refused as unsupported, never a trap.
    let u = g.udp4();
    assert!(matches!(g.listen(u, 1), Err(SocketError::NotSupported(_))));
    assert!(matches!(g.accept(u), Err(SocketError::NotSupported(_))));
    assert!(matches!(
        g.shutdown(u, ShutdownType::Both),
        Err(SocketError::NotSupported(_))
    ));
    assert!(
        is_state(&g.send(u, b"x").unwrap_err(), SocketState::Created),
        "send on unconnected UDP"
    );
    let t = g.tcp4();
    assert!(matches!(
        g.send_to(t, b"x", &addr("127.0.0.1", 9)),
        Err(SocketError::NotSupported(_))
    ));
    assert!(matches!(
        g.receive_from(t, 10),
        Err(SocketError::NotSupported(_))
    ));
}

#[test]
fn socket_options() {
    let mut g = SocketGuest::new();
    let t = g.tcp4();
    g.set_reuse_address(t, true).unwrap();
    assert!(matches!(
        g.set_reuse_address(t, false),
        Err(SocketError::NotSupported(_))
    ));
    g.set_keep_alive(t, true, Some(30_000)).unwrap();
    assert!(matches!(
        g.set_keep_alive(t, true, Some(0)),
        Err(SocketError::InvalidInput(_))
    ));
    g.set_receive_buffer_size(t, 256 * 1024).unwrap();
    g.set_send_buffer_size(t, 256 * 1024).unwrap();
    g.set_hop_limit(t, 16).unwrap();
    assert!(matches!(
        g.set_hop_limit(t, 0),
        Err(SocketError::InvalidInput(_))
    ));
    assert!(matches!(
        g.set_receive_buffer_size(t, 0),
        Err(SocketError::InvalidInput(_))
    ));
    let u = g.udp4();
    assert!(matches!(
        g.set_reuse_address(u, true),
        Err(SocketError::NotSupported(_))
    ));
    assert!(matches!(
        g.set_keep_alive(u, true, None),
        Err(SocketError::NotSupported(_))
    ));
    g.set_hop_limit(u, 8).unwrap();
    g.set_write_timeout(u, 1000).unwrap();
    g.set_connect_timeout(t, 1000).unwrap();
    assert_eq!(g.protocol(u), Protocol::Udp);
}

#[test]
fn host_policy_denial_is_access_denied() {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let policy: Policy = Arc::new(|a: SocketAddr, _| a.ip().to_string() != "127.0.0.2");
    let mut g = SocketGuest::with_policy(policy);
    let s = g.tcp4();
    let r = g.connect(s, &addr("127.0.0.2", port));
    assert!(matches!(r, Err(SocketError::AccessDenied)), "{r:?}");
    let b = g.tcp4();
    assert!(matches!(
        g.bind(b, &addr("127.0.0.2", 0)),
        Err(SocketError::AccessDenied)
    ));
}

#[test]
fn two_thousand_cycles_leak_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    const CYCLES: usize = 2000;
    let server = thread::spawn(move || {
        for _ in 0..CYCLES + 10 {
            let (s, _) = listener.accept().unwrap();
            drop(s);
        }
    });
    let mut g = SocketGuest::new();
    let cycle = |g: &mut SocketGuest, i: usize| {
        let s = g.tcp4();
        g.connect(s, &addr("127.0.0.1", port)).unwrap();
        // Half close explicitly, half only drop the handle.
        if i.is_multiple_of(2) {
            g.close(s).unwrap();
        }
        g.drop_socket(s);
    };
    for i in 0..10 {
        cycle(&mut g, i);
    }
    // From its first wait on, the instance keeps one clock pollable for all its waits (two
    // table entries): a wait that times out makes it before counting.
    let u = g.udp4();
    g.bind(u, &addr("127.0.0.1", 0)).unwrap();
    g.set_read_timeout(u, 1).unwrap();
    assert!(matches!(
        g.receive_from(u, 16),
        Err(SocketError::Timeout(_))
    ));
    g.drop_socket(u);
    let table_before = g.table_len();
    let fds_before = open_fds();
    for i in 0..CYCLES {
        cycle(&mut g, i);
    }
    server.join().unwrap();
    let table_after = g.table_len();
    let fds_after = open_fds();
    assert_eq!(table_after, table_before, "host resource table");
    // The count is the process's, and the other tests of this binary run beside this one: a
    // few of theirs may be open at either count. A leak here would be 2000 or 1000.
    assert!(
        fds_after <= fds_before + 8,
        "open fds {fds_before} -> {fds_after}"
    );
}

/// A guest's TCP socket connected to a peer on loopback, and the peer's end.
fn connected_to_a_peer() -> (SocketGuest, ResourceAny, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    g.connect(s, &addr("127.0.0.1", port)).unwrap();
    let (peer, _) = listener.accept().unwrap();
    (g, s, peer)
}

/// `discard` reads like `receive` and answers only the count: the stream goes on exactly
/// after what it dropped, a wait is bounded by the read timeout, and the end is 0.
#[test]
fn discard_counts_what_it_drops_and_leaves_the_rest() {
    let (mut g, s, mut peer) = connected_to_a_peer();
    peer.write_all(b"dropped|kept").unwrap();
    let mut dropped = 0;
    while dropped < 8 {
        dropped += g.discard(s, 8 - dropped).unwrap();
    }
    let mut kept = Vec::new();
    while kept.len() < 4 {
        kept.extend(g.receive(s, 100).unwrap());
    }
    assert_eq!(kept, b"kept");
    g.set_read_timeout(s, 50).unwrap();
    assert!(matches!(g.discard(s, 10), Err(SocketError::Timeout(_))));
    assert!(matches!(g.discard(s, 0), Err(SocketError::InvalidInput(_))));
    drop(peer);
    g.set_read_timeout(s, 5000).unwrap();
    assert_eq!(g.discard(s, 10).unwrap(), 0, "0 at the end");
    let b = g.tcp4();
    assert!(is_state(
        &g.discard(b, 1).unwrap_err(),
        SocketState::Created
    ));
}

#[test]
fn try_receive_never_waits() {
    let (mut g, s, mut peer) = connected_to_a_peer();
    let start = Instant::now();
    assert!(matches!(g.try_receive(s, 10), Err(SocketError::WouldBlock)));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the 30 s read timeout did not apply"
    );
    peer.write_all(b"hi").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        match g.try_receive(s, 10) {
            Err(SocketError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(got, b"hi");
    drop(peer);
    let deadline = Instant::now() + Duration::from_secs(5);
    let eof = loop {
        match g.try_receive(s, 10) {
            Err(SocketError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            other => break other.unwrap(),
        }
    };
    assert!(eof.is_empty(), "empty at EOF");
    let b = g.tcp4();
    assert!(is_state(
        &g.try_receive(b, 1).unwrap_err(),
        SocketState::Created
    ));
}

#[test]
fn send_receive_is_a_request_and_its_answer_and_checks_idleness() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The peer answers each line with it upper-cased; a line "stray" is answered twice in one
    // write, and "bye" ends the connection after its answer. It returns what it received.
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return seen;
            }
            seen.extend_from_slice(&buf[..n]);
            let line = String::from_utf8_lossy(&buf[..n]).to_string();
            let answer = line.to_uppercase();
            if line == "stray\n" {
                stream.write_all(answer.repeat(2).as_bytes()).unwrap();
            } else {
                stream.write_all(answer.as_bytes()).unwrap();
            }
            if line == "bye\n" {
                return seen;
            }
        }
    });
    let mut g = SocketGuest::new();
    let s = g.tcp4();
    assert!(is_state(
        &g.send_receive(s, b"early\n", 64, false).unwrap_err(),
        SocketState::Created
    ));
    g.connect(s, &addr("127.0.0.1", port)).unwrap();
    assert_eq!(g.send_receive(s, b"one\n", 64, true).unwrap(), b"ONE\n");
    assert_eq!(g.send_receive(s, b"two\n", 64, false).unwrap(), b"TWO\n");
    // Six bytes of the two answers: the other six are waiting, so the idle check sends nothing.
    assert_eq!(g.send_receive(s, b"stray\n", 6, true).unwrap(), b"STRAY\n");
    let err = g.send_receive(s, b"lost\n", 64, true).unwrap_err();
    assert!(
        matches!(&err, SocketError::NotIdle(m) if m == "bytes were waiting"),
        "{err:?}"
    );
    // The check took one byte of the stray answer; the rest is still there.
    assert_eq!(g.receive(s, 64).unwrap(), b"TRAY\n");
    assert_eq!(g.send_receive(s, b"bye\n", 64, true).unwrap(), b"BYE\n");
    // Once the peer's close has arrived, the check finds it and nothing is sent.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match g.try_receive(s, 1) {
            Ok(eof) if eof.is_empty() => break,
            Err(SocketError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            other => panic!("no close from the peer: {other:?}"),
        }
    }
    let err = g.send_receive(s, b"after\n", 64, true).unwrap_err();
    assert!(
        matches!(&err, SocketError::NotIdle(m) if m == "closed by the peer"),
        "{err:?}"
    );
    let seen = server.join().unwrap();
    assert_eq!(seen, b"one\ntwo\nstray\nbye\n", "nothing else was sent");
    g.drop_socket(s);

    // UDP: a datagram and its answer; the idle check is TCP's.
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_port = peer.local_addr().unwrap().port();
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        peer.send_to(&buf[..n].to_ascii_uppercase(), from).unwrap();
    });
    let u = g.udp4();
    g.connect(u, &addr("127.0.0.1", peer_port)).unwrap();
    assert!(matches!(
        g.send_receive(u, b"ping", 64, true),
        Err(SocketError::NotSupported(_))
    ));
    assert_eq!(g.send_receive(u, b"ping", 64, false).unwrap(), b"PING");
    echo.join().unwrap();
}

/// A peer that accepts and never reads: a large send times out with bytes still pending in
/// the host's stream. Closing (and dropping) must still be bounded by the write timeout; before
/// the socket was shut down first, the host's stream drop waited for that write forever.
fn close_after_a_stalled_send(close_first: bool) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let hold = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        // Never read; keep the connection open until the guest is done (or the test gave up).
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
        drop(s);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut g = SocketGuest::new();
        let s = g.tcp4();
        g.connect(s, &addr("127.0.0.1", port)).unwrap();
        g.set_write_timeout(s, 300).unwrap();
        g.set_send_buffer_size(s, 16 * 1024).unwrap();
        let sent = g.send(s, &pattern(64 << 20, 3));
        assert!(
            matches!(sent, Err(SocketError::Timeout(_))),
            "the send stalls: {sent:?}"
        );
        let start = Instant::now();
        if close_first {
            let _ = g.close(s);
        }
        g.drop_socket(s);
        let _ = tx.send(start.elapsed());
    });
    let took = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("close/drop after a stalled send returned within 10 s");
    let _ = done_tx.send(());
    hold.join().unwrap();
    took
}

#[test]
fn close_and_drop_are_bounded_after_a_stalled_send() {
    for close_first in [true, false] {
        let took = close_after_a_stalled_send(close_first);
        assert!(
            took < Duration::from_secs(3),
            "close_first={close_first}: {took:?}"
        );
    }
}
