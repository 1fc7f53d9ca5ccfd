internal import Glibc

extension Array<UInt8> {
    /// Appends a literal's bytes with one copy. `append(contentsOf: "text".utf8)` goes
    /// through String.UTF8View's generic path, about 150 instructions a call, and a request
    /// makes dozens of such calls (callgrind); this is a memcpy.
    @inline(__always)
    public mutating func append(_ text: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends a String's UTF-8 with one copy: a native String's bytes are contiguous, so
    /// this is a memcpy where `append(contentsOf: text.utf8)` walks the generic path.
    @inline(__always)
    public mutating func append(utf8 text: String) {
        if text.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) != nil { return }
        append(contentsOf: text.utf8)
    }
}
