//! The roomcast protocol over real WebSocket connections on 127.0.0.1, served by the
//! roomcast-hyper service on smol (roomcast-smol) and on tokio (roomcast-tokio): every scenario
//! runs on both, as `on_smol::NAME` and `on_tokio::NAME`.
//!
//! One scenario per test, each with its own server on an ephemeral port and real
//! async-tungstenite clients. Every wait is bounded (`WAIT`), every loop bounded in count, and
//! where a test must show that something did *not* arrive it uses a hub round trip
//! (`Client::barrier`) rather than a sleep. Timings are shortened through `Options` and
//! `HubConfig` where a scenario needs the heartbeat or the presence grace.
//!
//! One module per scenario, with the helpers only it uses; `common` holds the helpers that
//! several share. The list below runs each on both runtimes, under its own name.

use roomcast_tests::on_every_runtime;

mod common;

mod after_another_request;
mod authentication;
mod chat;
mod cursor_resume;
mod direct;
mod echo;
mod every_ref;
mod json_array;
mod leaks;
mod oversized_binary_frame;
mod oversized_frame;
mod presence;
mod reading_client;
mod silent_client;
mod slow_consumer;
mod stalled_handshake;
mod subprotocol;
mod typing;
mod welcome;

use after_another_request::a_session_after_another_request_goes_through_hyper;
use authentication::authentication_refuses_with_http_status;
use chat::two_clients_chat_in_a_room_with_presence;
use cursor_resume::cursor_resumes_the_user_stream_at_connect;
use direct::direct_messages_with_receipts;
use echo::echo_returns_every_message_unchanged;
use every_ref::every_ref_gets_exactly_one_answer;
use json_array::json_array_frames_are_bad_frames;
use leaks::nothing_leaks_over_1000_connections;
use oversized_binary_frame::oversized_binary_frame_closes_with_1009;
use oversized_frame::oversized_frame_closes_with_1009;
use presence::presence_and_publish_in_a_room;
use reading_client::reading_client_survives_the_heartbeat;
use silent_client::silent_client_is_closed_with_4001;
use slow_consumer::slow_consumer_is_dropped_and_resumes_exactly;
use stalled_handshake::stalled_handshake_is_dropped;
use subprotocol::subprotocol_is_selected_when_offered;
use typing::typing_is_relayed_to_others_only;
use welcome::connect_gets_welcome_then_streams;

on_every_runtime!(
    connect_gets_welcome_then_streams,
    two_clients_chat_in_a_room_with_presence,
    presence_and_publish_in_a_room,
    typing_is_relayed_to_others_only,
    direct_messages_with_receipts,
    every_ref_gets_exactly_one_answer,
    json_array_frames_are_bad_frames,
    silent_client_is_closed_with_4001,
    reading_client_survives_the_heartbeat,
    oversized_frame_closes_with_1009,
    oversized_binary_frame_closes_with_1009,
    slow_consumer_is_dropped_and_resumes_exactly,
    cursor_resumes_the_user_stream_at_connect,
    authentication_refuses_with_http_status,
    stalled_handshake_is_dropped,
    subprotocol_is_selected_when_offered,
    a_session_after_another_request_goes_through_hyper,
    echo_returns_every_message_unchanged,
    nothing_leaks_over_1000_connections,
);
