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
    typed: Vec<Box<dyn Typed>>,
}

/// Values every subscriber accepted, waiting for the commit.
pub(crate) struct Staged {
    value: Arc<Value>,
    typed: Vec<Box<dyn Any + Send>>,
}

impl Subscribers {
    pub(crate) fn new(initial: Arc<Value>) -> Subscribers {
        Subscribers {
            raw: watch::channel(initial).0,
            typed: Vec::new(),
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
        self.typed.retain(|s| !s.is_closed());
        self.typed.push(Box::new(TypedSubscriber { tx }));
        Ok(rx)
    }

    pub(crate) fn stage(&mut self, value: Arc<Value>) -> Result<Staged, String> {
        self.typed.retain(|s| !s.is_closed());
        let typed = self
            .typed
            .iter()
            .map(|s| s.stage(&value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Staged { value, typed })
    }

    pub(crate) fn publish(&mut self, staged: Staged) {
        for (s, v) in self.typed.iter().zip(staged.typed) {
            s.publish(v);
        }
        self.raw.send_replace(staged.value);
    }
}
