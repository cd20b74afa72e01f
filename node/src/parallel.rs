//! Spreading independent work over the machine's cores (a national node runs on two).
//!
//! Rules: only work on independent items (documents, or slices of received changes); the
//! results come back in the items' order; a panic in one item is resumed on the caller;
//! each thread takes the next item when it is free (no fixed share per thread).

/// Most threads one call uses.
pub const MAX_THREADS: usize = 4;

/// Threads worth using here: the cores, at most [`MAX_THREADS`].
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// `f` applied to every item, on up to [`threads`] scoped threads, results in the items'
/// order. Each thread takes the next item not yet taken as soon as it is free, so that a
/// long item does not leave the other threads' share waiting behind it (put the longest
/// items first for the shortest total). One item, or one core: on the caller's thread.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = threads().min(items.len());
    if threads < 2 {
        return items.into_iter().map(f).collect();
    }
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let next = || {
        // A panic in `f` never holds the lock, so the queue cannot be poisoned by it.
        queue.lock().unwrap_or_else(|e| e.into_inner()).next()
    };
    let f = &f;
    let next = &next;
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    while let Some((i, item)) = next() {
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        running
            .into_iter()
            .flat_map(|t| {
                t.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_order() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = super::map(items.clone(), |n| n * n);
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert_eq!(super::map(Vec::<u64>::new(), |n| n), Vec::<u64>::new());
    }

    #[test]
    #[should_panic(expected = "item 7")]
    fn a_panic_in_one_item_reaches_the_caller() {
        let items: Vec<u64> = (0..20).collect();
        super::map(items, |n| {
            assert_ne!(n, 7, "item 7");
            n
        });
    }
}
