/// Why a workflow of the service refused or failed, in the domain's own terms. The routes
/// turn each case into an HTTP status in one place (`Routes.httpError(for:)`); the
/// service never picks a status.
public enum AssetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input is malformed or inconsistent; the message names the field and the problem.
    case invalid(String)
    /// No such asset, upload or version in the caller's workspace (or it is being deleted).
    case notFound(String)
    /// The asset or upload is in a state that does not allow this now. `retryAfter`, in
    /// seconds, when waiting is all it takes (another request holds the asset).
    case conflict(String, retryAfter: Int? = nil)
    /// The content is not of an allowed type, or not of the type that was declared.
    case refusedContent(String)
    /// Over a size limit, or larger than declared.
    case tooLarge(String)
    /// Something on our side failed (a spool file, content detection); the details went
    /// to the log, the message is safe to show.
    case internalFailure(String)

    public var description: String {
        switch self {
        case .invalid(let message), .notFound(let message), .conflict(let message, _), .refusedContent(let message),
             .tooLarge(let message), .internalFailure(let message):
            message
        }
    }
}
