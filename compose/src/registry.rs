//! Finding a stream of ours again behind wasmtime-wasi's `Box<dyn InputStream>` or
//! `Box<dyn OutputStream>` (the traits have no `Any`), for the host functions that work on it
//! directly: the own TCP's writes from the guest's memory, TLS reads into it.
//!
//! Each such stream holds a token (an `Arc<()>` no one else holds) and is recorded here by
//! its resource with its address and the token's weak half. A resource is taken for the
//! recorded stream only while the token lives and the table's object for it is at the
//! recorded address: two live objects never share an address, so it is that stream.

use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use wasmtime::component::{Resource, ResourceTable};

/// The streams of type `C` of one instance, by resource (FxHash: the keys are the table's own
/// small indices, looked up on every read and write).
pub struct Registry<C>(
    rustc_hash::FxHashMap<u32, (usize, Weak<()>)>,
    PhantomData<fn() -> C>,
);

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry(rustc_hash::FxHashMap::default(), PhantomData)
    }
}

impl<C> Registry<C> {
    /// Record the `C` at `at` (boxed, and in the table as `rep`), which alone holds `alive`.
    pub(crate) fn register(&mut self, rep: u32, at: *const C, alive: &Arc<()>) {
        self.0.insert(rep, (at as usize, Arc::downgrade(alive)));
    }

    /// The `C` that `stream` is, if it is one.
    pub(crate) fn find<'t, D: ?Sized + Send + 'static>(
        &mut self,
        table: &'t mut ResourceTable,
        stream: &Resource<Box<D>>,
    ) -> Option<&'t mut C> {
        let &(at, ref alive) = self.0.get(&stream.rep())?;
        if alive.strong_count() == 0 {
            self.0.remove(&stream.rep());
            return None;
        }
        let object: *mut D = &mut **table.get_mut(stream).ok()?;
        if object as *mut () as usize != at {
            return None;
        }
        // SAFETY: the `C` recorded at `at` is alive (its token has a strong count and only it
        // holds the token), and two live objects of non-zero size never share an address, so
        // the table's object at `at` is that `C`; the borrow is the table's.
        Some(unsafe { &mut *(object as *mut C) })
    }
}
