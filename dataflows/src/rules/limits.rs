//! The size and nesting limits of rule expressions, checked by one iterative scan of the
//! source before the `cel` parser, which recurses, sees it (see the parent module's docs
//! for why and for the measured stack each level costs).

/// The longest rule expression, in bytes.
pub const MAX_EXPR_BYTES: usize = 16 * 1024;

/// The deepest nesting bound ([`nesting_bound`]) a rule expression may have.
pub const MAX_EXPR_DEPTH: usize = 32;

/// Checks the limits that keep the `cel` parser within any thread's stack (module docs).
///
/// Errors read `expression is 204800 bytes, the limit is 16384` and `expression nests 5001
/// deep, the limit is 32`. Linear time, constant stack.
pub fn check_limits(source: &str) -> Result<(), String> {
    if source.len() > MAX_EXPR_BYTES {
        return Err(format!(
            "expression is {} bytes, the limit is {MAX_EXPR_BYTES}",
            source.len()
        ));
    }
    let depth = nesting_bound(source)?;
    if depth > MAX_EXPR_DEPTH {
        return Err(format!(
            "expression nests {depth} deep, the limit is {MAX_EXPR_DEPTH}"
        ));
    }
    Ok(())
}

/// An upper bound on the depth of the trees CEL builds for `source`, computed by one
/// iterative pass over its bytes (no parse): each bracket, unary operator and operator of
/// an arithmetic or comparison chain adds one level; a bracket's `&&`/`||` terms add
/// 2·⌈log2⌉ of their count; each `?` adds one. Rules take no strings, so a quote is an
/// error here (it would hide brackets from the scan).
pub fn nesting_bound(source: &str) -> Result<usize, String> {
    /// One open bracket (the whole source is the outermost).
    #[derive(Default)]
    struct Frame {
        /// Operators in the current segment (between separators at this level).
        ops: usize,
        /// Deepest bracket closed within the current segment.
        child: usize,
        /// Deepest segment so far.
        best: usize,
        /// `&&` and `||` at this level.
        logical: usize,
        /// `?` at this level.
        ternary: usize,
    }
    impl Frame {
        fn separate(&mut self) {
            self.best = self.best.max(self.ops + self.child.max(1));
            self.ops = 0;
            self.child = 0;
        }
        fn depth(mut self) -> usize {
            self.separate();
            let log2 = (usize::BITS - self.logical.leading_zeros()) as usize;
            self.best + 2 * log2 + self.ternary
        }
    }
    let bytes = source.as_bytes();
    let mut stack = vec![Frame::default()];
    let mut i = 0;
    while i < bytes.len() {
        let two = bytes.get(i..i + 2).unwrap_or(&[]);
        let nested = stack.len() > 1;
        let top = stack
            .last_mut()
            .expect("the outermost frame is never popped");
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                return Err("string literals are not supported: rules use numbers".into());
            }
            b'(' | b'[' | b'{' => stack.push(Frame::default()),
            // An unbalanced closer (at the outermost level) is left for the parser.
            b')' | b']' | b'}' if nested => {
                let depth = stack.pop().expect("checked").depth() + 1;
                let parent = stack.last_mut().expect("checked");
                parent.child = parent.child.max(depth);
            }
            _ if two == b"&&" || two == b"||" => {
                top.separate();
                top.logical += 1;
                i += 1;
            }
            b'?' => {
                top.separate();
                top.ternary += 1;
            }
            b':' | b',' => top.separate(),
            _ if matches!(two, b"==" | b"!=" | b"<=" | b">=") => {
                top.ops += 1;
                i += 1;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'!' | b'.' => top.ops += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    i += 1;
                }
                // `in` is a relation operator (CEL's membership test).
                if &bytes[start..=i] == b"in" {
                    top.ops += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    // Unclosed brackets count as closed at the end (the parser rejects them).
    while stack.len() > 1 {
        let depth = stack.pop().expect("checked").depth() + 1;
        let parent = stack.last_mut().expect("checked");
        parent.child = parent.child.max(depth);
    }
    Ok(stack.pop().expect("the outermost frame").depth())
}
