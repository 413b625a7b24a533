// GraphQL over HTTP and the graphql-transport-ws subscription, with the caller's bearer token.

export class ApiError extends Error {
  constructor(message, code = "ERROR", status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export function createClient(token) {
  async function gql(query, variables = {}) {
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (err) {
      throw new ApiError(`cannot reach the server (${err.message})`, "NETWORK");
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`server answered ${response.status}`, "HTTP_" + response.status, response.status);
    }
    const error = body.errors && body.errors[0];
    if (error) {
      const code = (error.extensions && error.extensions.code) || "ERROR";
      throw new ApiError(error.message, code, response.status);
    }
    return body.data;
  }

  // Calls onData(payload.data) for every pushed result; reconnects with back-off until closed.
  function subscribe(query, { onData, onStatus }) {
    let socket = null;
    let closed = false;
    let attempt = 0;
    let timer = null;

    function connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}/graphql`, "graphql-transport-ws");
      onStatus("connecting");
      socket.onopen = () => {
        socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } }));
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "connection_ack") {
          attempt = 0;
          onStatus("live");
          socket.send(JSON.stringify({ id: "portfolio", type: "subscribe", payload: { query } }));
        } else if (message.type === "next") {
          onData(message.payload.data);
        } else if (message.type === "ping") {
          socket.send(JSON.stringify({ type: "pong" }));
        } else if (message.type === "error") {
          onStatus("error", message.payload && message.payload[0] && message.payload[0].message);
        }
      };
      socket.onclose = (event) => {
        if (closed) return;
        if (event.code === 4401 || event.code === 4403) {
          onStatus("unauthorized");
          return;
        }
        onStatus("off");
        attempt += 1;
        timer = setTimeout(connect, Math.min(15000, 500 * 2 ** attempt));
      };
    }

    connect();
    return {
      close() {
        closed = true;
        clearTimeout(timer);
        if (socket) socket.close(1000, "bye");
      },
    };
  }

  return { gql, subscribe };
}
