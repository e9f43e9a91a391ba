//! A graphql-ws (`graphql-transport-ws`) client over a real WebSocket, as
//! the graphql-ws library speaks it, for the subscription tests.

use std::time::Duration;

use async_graphql::futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

/// How long a test waits for something the server should send.
pub const WAIT: Duration = Duration::from_secs(10);

/// A graphql-ws client connection, as the graphql-ws library speaks it.
pub struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

/// What the server did with a connection that ended.
#[derive(Debug, PartialEq)]
pub struct Closed(pub u16, pub String);

impl Ws {
    /// Opens a socket on `app` offering `protocol`, with an `Origin` if given.
    pub async fn open_with(app: &TestApp, protocol: &str, origin: Option<&str>) -> Result<Ws, WsError> {
        let mut request = format!("{}/graphql", app.url.replace("http://", "ws://")).into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(protocol).unwrap());
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", HeaderValue::from_str(origin).unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws(stream))
    }

    pub async fn open(app: &TestApp) -> Ws {
        Ws::open_with(app, "graphql-transport-ws", None).await.expect("the upgrade is accepted")
    }

    /// Opens a connection and sends `connection_init` with `token`.
    pub async fn init(app: &TestApp, token: Option<&str>) -> Ws {
        let mut ws = Ws::open(app).await;
        let payload = token.map_or(json!({}), |t| json!({ "Authorization": format!("Bearer {t}") }));
        ws.send(json!({ "type": "connection_init", "payload": payload })).await;
        ws
    }

    /// A connection of `token`'s session, acknowledged.
    pub async fn connect(app: &TestApp, token: &str) -> Ws {
        let mut ws = Ws::init(app, Some(token)).await;
        assert_eq!(ws.message().await.expect("connection_ack")["type"], "connection_ack");
        ws
    }

    pub async fn send(&mut self, message: Value) {
        self.0.send(Message::text(message.to_string())).await.expect("send");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message, or how the connection closed.
    pub async fn message(&mut self) -> Result<Value, Closed> {
        loop {
            let next = tokio::time::timeout(WAIT, self.0.next()).await.expect("a message within the wait");
            match next {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).expect("JSON")),
                Some(Ok(Message::Close(frame))) => {
                    let frame = frame.unwrap_or(CloseFrame { code: 1005.into(), reason: "".into() });
                    return Err(Closed(frame.code.into(), frame.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Closed(1006, e.to_string())),
                None => return Err(Closed(1006, "ended".into())),
            }
        }
    }

    /// The payload of the next `next` message for subscription `id`.
    pub async fn next(&mut self, id: &str) -> Value {
        let message = self.message().await.unwrap_or_else(|c| panic!("closed instead: {c:?}"));
        assert_eq!((message["type"].as_str(), message["id"].as_str()), (Some("next"), Some(id)), "{message}");
        message["payload"].clone()
    }

    /// The code of the error that ended subscription `id` (and its `complete`).
    pub async fn refused(&mut self, id: &str) -> String {
        let answer = self.next(id).await;
        assert!(answer.get("data").is_none_or(Value::is_null), "{answer}");
        assert_eq!(self.message().await.expect("complete"), json!({ "type": "complete", "id": id }));
        answer["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no code: {answer}")).to_string()
    }

    /// How the server closed the connection (what came before is skipped).
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.message().await {
                return closed;
            }
        }
    }

    /// Fails when anything but a ping arrives within `quiet`.
    pub async fn nothing_within(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, self.0.next()).await {
            assert!(matches!(message, Message::Ping(_) | Message::Pong(_)), "expected nothing, got {message:?}");
        }
    }
}
