/// Why a file got no thumbnail. Every such failure is final: the same bytes fail the
/// same way again, so the task records it and does not retry. `description` is the
/// reason recorded with the asset (it names no path).
public struct ThumbnailError: Error, Sendable, CustomStringConvertible, Equatable {
    public let description: String

    /// Not the content's fault (a program that did not start, or ran past its deadline
    /// on a busy host): the child answers nothing and exits, so that assetd sees the
    /// decoder crash (another attempt later) rather than a refusal of the file (final).
    public let crash: Bool

    /// A program ran past its deadline and could not be killed (a confined decoder child
    /// may signal nothing but itself): it runs until the child ends and the zygote kills
    /// the child's process group, so the child must not go on beside it.
    var leftRunning = false

    public init(_ description: String, crash: Bool = false) {
        self.description = description
        self.crash = crash
    }

    static func vips(_ what: String) -> ThumbnailError {
        ThumbnailError("\(what): \(Vips.takeError())")
    }
}
