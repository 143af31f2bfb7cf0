//! Embedding wasmhooks in a Rust auth server: one `Host` in process, a
//! sync trigger that decides a registration while the user waits, and a
//! webhook delivered (signed, durably) to a receiver.
//!
//! Run: `cargo run -p wasmhooks --example embed` (it builds the example
//! plugins to wasm on first use).

use std::time::Duration;

use serde_json::json;
use wasmhooks::host::{EmitEvent, Host, HostConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A receiver standing in for the platform's own webhook endpoint.
    let (sent, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver = format!("http://{}/webhooks", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(move |body: String| {
            let sent = sent.clone();
            async move {
                let _ = sent.send(body);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    // 1. Build the host: SQLite and compiled plugins under a data directory.
    let data = tempfile::tempdir()?;
    let mut config = HostConfig::new(data.path());
    config.private_networks = vec!["127.0.0.0/8".parse()?]; // the receiver is local
    let host = Host::start(config).await?;

    // 2. Register plugins and hooks.
    for name in ["block-disposable-email", "enrich"] {
        let bytes = std::fs::read(wasmhooks_testkit::plugin(name))?;
        host.put_plugin(name, bytes).await?;
    }
    host.create_hook(
        Some("no-throwaway-signups".into()),
        json!({"sync": {"trigger": "PreRegistration", "on_error": "deny"},
               "steps": [{"plugin": "block-disposable-email"}]}),
    )
    .await?;
    host.create_hook(
        Some("crm".into()),
        json!({"events": ["PostRegister"],
               "steps": [{"plugin": "enrich", "config": {"source": "embedded"}}],
               "webhook": {"url": receiver}}),
    )
    .await?;

    // 3. Ask before registering a user: deny or allow, within the deadline.
    for email in ["ada@example.com", "bot@mailinator.com"] {
        let decision = host
            .call_sync(
                "PreRegistration",
                json!({"email": email}),
                Some(Duration::from_millis(200)),
            )
            .await?;
        println!(
            "PreRegistration {email}: {:?} {} ({} µs)",
            decision.decision,
            decision.message.as_deref().unwrap_or(""),
            decision.duration_us
        );
    }

    // 4. Emit an event: durable once `emit` returns, delivered signed.
    let ingested = host
        .emit(EmitEvent::new(
            "PostRegister",
            json!({"interactionEvent": "Register", "userId": "u1", "user": {"primaryEmail": "ada@example.com"}}),
        ))
        .await?;
    println!("stored event {}", ingested.event_id);
    let body = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await?
        .ok_or("receiver closed")?;
    println!("receiver got: {body}");

    // 5. Shut down: in-flight deliveries finish first.
    host.shutdown().await;
    Ok(())
}
