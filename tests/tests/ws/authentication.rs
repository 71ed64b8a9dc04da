//! Authentication: refusals by HTTP status, and a custom hook.

use std::sync::Arc;

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use roomcast_core::access::Identity;
use roomcast_core::hub::HubConfig;
use roomcast_core::names::UserId;
use roomcast_hyper::{Options, Refusal};
use roomcast_tests::{Client, Flavor, Server, within};

/// The HTTP status of a refused handshake.
fn refused_status(result: Result<Client, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got the error {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the handshake succeeded"),
    }
}

/// The development auth refuses a handshake without `?user=` (401), with an invalid user id (401)
/// or cursor (400). A custom `authenticate` hook decides alone: its refusal's status is the
/// response's (403), and what it accepts is the connection (here: no broadcast feed).
pub(crate) fn authentication_refuses_with_http_status(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        for (query, status) in [
            ("", 401),
            ("room=lobby", 401),
            ("user=", 401),
            ("user=a%01b", 401),
            ("user=a&cursor=nonsense", 400),
        ] {
            let result = within("handshake", Client::connect(&server.url(query))).await;
            assert_eq!(refused_status(result), status, "?{query}");
        }

        let options = Options {
            authenticate: Arc::new(|handshake| {
                if handshake.token().as_deref() == Some("letmein") {
                    Ok(Identity::user(UserId::new("alice").expect("valid")))
                } else {
                    Err(Refusal::new(403, "forbidden"))
                }
            }),
            ..Options::default()
        };
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        // The hook alone decides: `?user=` means nothing to it.
        let result = within("handshake", Client::connect(&server.url("user=alice"))).await;
        assert_eq!(refused_status(result), 403);

        let mut request = server.url("").into_client_request().expect("a request");
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer letmein"));
        let (mut client, _) = within("handshake", Client::connect_request(request))
            .await
            .expect("accepted");
        assert_eq!(client.next_json().await["user"], "alice");
        // The same token in the query, as browsers must send it.
        let (mut client, _, _) = server.connect("token=letmein").await;
        client.close_and_wait().await;
    });
}
