// libFuzzer target: the JSON parser on arbitrary bytes, and the writer on what it parsed.
// Built by fuzz/run.sh with the JSON module's sources and -sanitize=fuzzer,address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    if let value = try? JSONParser.parse(bytes) {
        // What the writer prints, the parser must read back as the same value.
        let again = try? JSONParser.parse(value.serialized())
        precondition(again == value, "JSON round trip changed the value")
    }
    return 0
}
