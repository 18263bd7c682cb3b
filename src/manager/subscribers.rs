//! Subscribers to a component's effective configuration. Publishing is two
//! steps: every subscriber first *stages* the value (and may refuse it), and
//! only when all accept, and the commit is durable, is it published.

use std::any::Any;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

trait Typed: Send + Sync {
    fn stage(&self, value: &Value) -> Result<Box<dyn Any + Send>, String>;
    fn publish(&self, staged: Box<dyn Any + Send>);
    fn is_closed(&self) -> bool;
}

struct TypedSubscriber<T> {
    tx: watch::Sender<T>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Typed for TypedSubscriber<T> {
    fn stage(&self, value: &Value) -> Result<Box<dyn Any + Send>, String> {
        T::deserialize(value)
            .map(|v| Box::new(v) as Box<dyn Any + Send>)
            .map_err(|e| {
                format!(
                    "subscriber of {} refused it: {e}",
                    std::any::type_name::<T>()
                )
            })
    }

    fn publish(&self, staged: Box<dyn Any + Send>) {
        if let Ok(v) = staged.downcast::<T>() {
            self.tx.send_replace(*v);
        }
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Every subscriber of one component.
pub(crate) struct Subscribers {
    raw: watch::Sender<Arc<Value>>,
    typed: Vec<(u64, Box<dyn Typed>)>,
    next_id: u64,
}

/// Values every subscriber accepted, waiting for the commit. The lock on
/// the subscribers is not held while the commit is made durable, so a
/// subscriber may join in between: it is staged when the value is published.
pub(crate) struct Staged {
    value: Arc<Value>,
    typed: Vec<(u64, Box<dyn Any + Send>)>,
}

impl Subscribers {
    pub(crate) fn new(initial: Arc<Value>) -> Subscribers {
        Subscribers {
            raw: watch::channel(initial).0,
            typed: Vec::new(),
            next_id: 0,
        }
    }

    pub(crate) fn current(&self) -> Arc<Value> {
        self.raw.borrow().clone()
    }

    pub(crate) fn watch_raw(&self) -> watch::Receiver<Arc<Value>> {
        self.raw.subscribe()
    }

    /// Adds a typed subscriber, which must accept the configuration in force.
    pub(crate) fn add<T: DeserializeOwned + Send + Sync + 'static>(
        &mut self,
    ) -> Result<watch::Receiver<T>, String> {
        let current = self.current();
        let value = T::deserialize(&*current).map_err(|e| e.to_string())?;
        let (tx, rx) = watch::channel(value);
        self.typed.retain(|(_, s)| !s.is_closed());
        self.next_id += 1;
        self.typed
            .push((self.next_id, Box::new(TypedSubscriber { tx })));
        Ok(rx)
    }

    pub(crate) fn stage(&mut self, value: Arc<Value>) -> Result<Staged, String> {
        self.typed.retain(|(_, s)| !s.is_closed());
        let typed = self
            .typed
            .iter()
            .map(|(id, s)| s.stage(&value).map(|v| (*id, v)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Staged { value, typed })
    }

    pub(crate) fn publish(&mut self, staged: Staged) {
        let mut values = staged.typed.into_iter().peekable();
        self.typed.retain(|(id, s)| {
            while values.next_if(|(v, _)| v < id).is_some() {}
            if let Some((_, v)) = values.next_if(|(v, _)| v == id) {
                s.publish(v);
                return true;
            }
            // Joined after staging, on the old value: it gets the new one
            // too, or, if it cannot read it, is closed rather than left behind.
            match s.stage(&staged.value) {
                Ok(v) => {
                    s.publish(v);
                    true
                }
                Err(e) => {
                    tracing::warn!("closing a subscriber that joined during a commit: {e}");
                    false
                }
            }
        });
        self.raw.send_replace(staged.value);
    }
}
