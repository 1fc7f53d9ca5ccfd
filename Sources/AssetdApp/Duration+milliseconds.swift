import FastCGIServer

extension Duration {
    /// Milliseconds with microsecond precision, for log lines (`12.345`).
    var milliseconds: String {
        let (seconds, attoseconds) = components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
    }

    /// `milliseconds`, appended to `out` as UTF-8.
    func appendMilliseconds(to out: inout [UInt8]) {
        let (seconds, attoseconds) = components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        guard micros >= 0 else {
            out.append(contentsOf: milliseconds.utf8)
            return
        }
        Response.appendDecimal(Int(micros / 1000), to: &out)
        let fraction = Int(micros % 1000)
        out.append(UInt8(ascii: "."))
        out.append(UInt8(ascii: "0") + UInt8(fraction / 100))
        out.append(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(fraction % 10))
    }
}
