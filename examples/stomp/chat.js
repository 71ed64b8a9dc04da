// The chat client of a Spring STOMP application (SockJS + STOMP, `/app` and `/topic`
// destinations, private messages on `/user/queue/private`), moved to roomcast with the changes a
// Spring user makes and nothing else. Load sockjs-client 1.6 and @stomp/stompjs 7 (UMD) first.
//
// What changes from Spring:
// - JOIN and LEAVE come from roomcast's presence (`/topic/<room>.presence`), which the server
//   keeps per user and device, instead of a `SessionDisconnectEvent` listener publishing them.
// - The sender does not get its own message back on `/topic/`: it shows it when the RECEIPT
//   comes, which is also the moment it is stored.
// - TYPING is a message like CHAT, as the Spring application sends it (roomcast.v1 clients have
//   an ephemeral `typing` instead).
//
//   const chat = new ChatClient({ url: '/stomp?token=JWT', room: 'public', username: 'alice',
//                                 onEvent: (event) => render(event) });
//   await chat.connect();
//   chat.send('hello'); chat.typing(); chat.sendPrivate('bob', 'psst'); chat.disconnect();
//
// `onEvent` gets `{ type: 'JOIN' | 'LEAVE' | 'CHAT' | 'TYPING' | 'PRIVATE', sender, content }`.
/* global SockJS, StompJs */
class ChatClient {
  constructor({ url, room, username, onEvent, transports }) {
    this.room = room;
    this.username = username;
    this.onEvent = onEvent;
    this.receipts = 0;
    this.client = new StompJs.Client({
      webSocketFactory: () => new SockJS(url, null, transports ? { transports } : {}),
      reconnectDelay: 5000,
    });
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.client.onStompError = (frame) => reject(new Error(frame.headers.message));
      this.client.onConnect = () => {
        this.client.subscribe(`/topic/${this.room}`, (message) => {
          const body = JSON.parse(message.body);
          this.onEvent({ type: body.type, sender: message.headers['x-roomcast-from'], content: body.content });
        });
        this.client.subscribe(`/topic/${this.room}.presence`, (message) => {
          const presence = JSON.parse(message.body);
          for (const user of presence.joins) this.onEvent({ type: 'JOIN', sender: user });
          for (const user of presence.leaves) this.onEvent({ type: 'LEAVE', sender: user });
        });
        this.client.subscribe('/user/queue/private', (message) => {
          const body = JSON.parse(message.body);
          this.onEvent({ type: 'PRIVATE', sender: message.headers['x-roomcast-from'], content: body.content });
        }, { receipt: 'subscribed' });
        this.client.watchForReceipt('subscribed', () => resolve());
      };
      this.client.activate();
    });
  }

  /// Publishes `body` to the room; shows it as its own once stored.
  publish(body) {
    this.receipts += 1;
    const receipt = `send-${this.receipts}`;
    this.client.watchForReceipt(receipt, () => {
      this.onEvent({ type: body.type, sender: this.username, content: body.content });
    });
    this.client.publish({ destination: `/app/${this.room}`, body: JSON.stringify(body), headers: { receipt } });
  }

  send(content) {
    this.publish({ type: 'CHAT', content });
  }

  typing() {
    this.publish({ type: 'TYPING' });
  }

  sendPrivate(to, content) {
    this.client.publish({
      destination: `/user/${to}/queue/private`,
      body: JSON.stringify({ type: 'PRIVATE', content }),
    });
  }

  disconnect() {
    return this.client.deactivate();
  }
}
