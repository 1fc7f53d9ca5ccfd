/// Why a file got no thumbnail. Every such failure is final: the same bytes fail the
/// same way again, so the task records it and does not retry. `description` is the
/// reason recorded with the asset (it names no path).
public struct ThumbnailError: Error, Sendable, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    static func vips(_ what: String) -> ThumbnailError {
        ThumbnailError("\(what): \(Vips.takeError())")
    }
}
