// The notification client of a Spring STOMP application (`/user/queue/notifications`, each
// notification acknowledged when the user reads it), moved to roomcast. Load sockjs-client 1.6
// and @stomp/stompjs 7 (UMD) first.
//
// roomcast keeps the user's notifications (sent with `POST /api/notify`) in the user's outbox:
// those not yet read arrive as soon as the client subscribes, on every device of the user, and
// an ACK marks the outbox read up to the notification acknowledged, for every device.
//
//   const centre = new NotificationClient({ url: '/stomp?token=JWT',
//                                            onNotification: (n) => show(n) });
//   await centre.connect();
//   centre.markRead(n);   // n as given to onNotification
//
// `onNotification` gets `{ id, event, data, message }` (`message` the STOMP frame, for `ack`).
/* global SockJS, StompJs */
class NotificationClient {
  constructor({ url, onNotification, transports }) {
    this.onNotification = onNotification;
    this.acks = 0;
    this.client = new StompJs.Client({
      webSocketFactory: () => new SockJS(url, null, transports ? { transports } : {}),
      reconnectDelay: 5000,
    });
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.client.onStompError = (frame) => reject(new Error(frame.headers.message));
      this.client.onConnect = () => {
        this.client.subscribe('/user/queue/notifications', (message) => {
          this.onNotification({
            id: message.headers['message-id'],
            event: message.headers['x-roomcast-event'],
            data: JSON.parse(message.body),
            message,
          });
        }, { ack: 'client-individual', receipt: 'subscribed' });
        this.client.watchForReceipt('subscribed', () => resolve());
      };
      this.client.activate();
    });
  }

  /// Marks `notification` (and those before it) read; resolves once the server moved the mark.
  markRead(notification) {
    this.acks += 1;
    const receipt = `ack-${this.acks}`;
    const done = new Promise((resolve) => this.client.watchForReceipt(receipt, resolve));
    notification.message.ack({ receipt });
    return done;
  }

  disconnect() {
    return this.client.deactivate();
  }
}
