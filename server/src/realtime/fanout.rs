//! Turns bus events into Socket.IO pushes to this node's sockets. Runs once per node.
//!
//! Emission never blocks the loop on a slow client: socketioxide queues per socket, and a socket
//! whose buffer is full drops the frame — the client notices the gap in message ids and resyncs.

use futures::StreamExt;
use socketioxide::SocketIo;
use switchboard_core::bus::{Bus, BusEvent};
use switchboard_core::domain::SenderKind;

use std::sync::Arc;

pub async fn run(io: SocketIo, bus: Arc<dyn Bus>, shutdown: tokio_util::sync::CancellationToken) {
    let mut events = loop {
        match bus.subscribe().await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "fanout: subscribe failed, retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    };
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = shutdown.cancelled() => return,
        };
        let Some(event) = event else { return };
        deliver(&io, event).await;
    }
}

async fn deliver(io: &SocketIo, event: BusEvent) {
    let (Some(agents), Some(widgets)) = (io.of("/agent"), io.of("/widget")) else { return };
    let result = match event {
        BusEvent::MessageCreated { tenant_id: _, conversation_id, assignee_id, payload } => {
            let mut rooms = vec![format!("watch:{conversation_id}")];
            if let Some(a) = assignee_id {
                rooms.push(format!("user:{a}"));
            }
            let r1 = agents.to(rooms).emit("message", &payload).await;
            // An internal note (`private`) is for agents only: never emitted to the customer.
            if payload.get("private").and_then(|p| p.as_bool()) == Some(true) {
                r1
            } else {
                let r2 = widgets.to(format!("wconv:{conversation_id}")).emit("message", &payload).await;
                r1.and(r2)
            }
        }
        BusEvent::ConversationUpdated { tenant_id, conversation_id, assignee_id, previous_assignee_id, payload } => {
            let mut rooms = vec![format!("sup:{tenant_id}"), format!("watch:{conversation_id}")];
            rooms.extend(assignee_id.map(|a| format!("user:{a}")));
            rooms.extend(previous_assignee_id.filter(|p| Some(*p) != assignee_id).map(|p| format!("user:{p}")));
            let r1 = agents.to(rooms).emit("conversation", &payload).await;
            // The customer learns only the state, never agent-side details.
            let slim = serde_json::json!({ "id": conversation_id, "state": payload.get("state") });
            let r2 = widgets.to(format!("wconv:{conversation_id}")).emit("conversation", &slim).await;
            r1.and(r2)
        }
        BusEvent::AgentUpdated { tenant_id, user_id, payload } => {
            agents.to(vec![format!("user:{user_id}"), format!("sup:{tenant_id}")]).emit("agent", &payload).await
        }
        BusEvent::QueueChanged { tenant_id, payload } => {
            // Each waiting customer hears their own place; supervisors get the whole picture.
            for queue in payload.get("queues").and_then(|q| q.as_array()).into_iter().flatten() {
                for entry in queue.get("waiting").and_then(|w| w.as_array()).into_iter().flatten() {
                    let Some(id) = entry.get("conversation_id").and_then(|i| i.as_i64()) else { continue };
                    let view = serde_json::json!({
                        "conversation_id": id,
                        "position": entry.get("position"),
                        "eta_secs": entry.get("eta_secs"),
                    });
                    let _ = widgets.clone().to(format!("wconv:{id}")).emit("queue", &view).await;
                }
            }
            agents.to(format!("sup:{tenant_id}")).emit("queue", &payload).await
        }
        BusEvent::DispatchNeeded { .. } => Ok(()),
        BusEvent::AccessChanged { tenant_id: _, user_id, token_hash } => {
            super::agent::close_sockets_of(io, user_id, token_hash.as_deref());
            Ok(())
        }
        BusEvent::Resync { reason } => {
            // Events were lost on the way to this node; its sockets never dropped, so their
            // clients would not resync by themselves. Every client answers `resync` the way it
            // answers a reconnect: reload from its last seen message id.
            tracing::info!(%reason, "telling this node's clients to resync");
            let notice = serde_json::json!({ "reason": reason });
            let r1 = agents.emit("resync", &notice).await;
            let r2 = widgets.emit("resync", &notice).await;
            r1.and(r2)
        }
        BusEvent::Typing { tenant_id: _, conversation_id, assignee_id, sender } => {
            let notice = serde_json::json!({ "conversation_id": conversation_id, "sender": sender });
            if sender == SenderKind::Contact {
                let mut rooms = vec![format!("watch:{conversation_id}")];
                rooms.extend(assignee_id.map(|a| format!("user:{a}")));
                agents.to(rooms).emit("typing", &notice).await
            } else {
                widgets.to(format!("wconv:{conversation_id}")).emit("typing", &notice).await
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "fanout emit failed");
    }
}
