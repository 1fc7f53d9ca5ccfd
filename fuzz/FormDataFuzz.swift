// libFuzzer target: the multipart/form-data parser on arbitrary bodies, fed in chunks
// whose size the input's first byte picks; the parts must be the same for every chunking.
struct Sink: MultipartHandler {
    var events: [UInt8] = []
    mutating func beginPart(_ headers: PartHeaders) throws { events.append(1); events += Array((headers.name ?? "").utf8) }
    mutating func partData(_ bytes: UnsafeRawBufferPointer) throws { events += bytes }
    mutating func endPart() throws { events.append(2) }
}

func run(_ body: UnsafeBufferPointer<UInt8>, chunk: Int) -> [UInt8]? {
    guard var parser = try? MultipartParser(boundary: "b0undary") else { return nil }
    var sink = Sink()
    var offset = 0
    do {
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            try parser.feed(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: body[offset..<end])), to: &sink)
            offset = end
        }
        try parser.finish()
    } catch {
        return nil
    }
    return sink.events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let chunk = Int(data[0]) + 1
    let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
    let whole = run(body, chunk: max(1, body.count))
    let pieces = run(body, chunk: chunk)
    precondition(whole == pieces, "the parts depend on how the body was chunked")
    return 0
}
