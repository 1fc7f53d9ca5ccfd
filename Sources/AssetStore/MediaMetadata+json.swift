public import JSON

extension MediaMetadata {
    /// The asset JSON's `media` object (CONTRACT.md), also sent in an asset.updated event:
    /// every field null when unknown; `gps` is {latitude, longitude} when this value has
    /// them. Whoever shows it drops them first unless ASSETD_KEEP_GPS=on (`withoutGPS`).
    public var json: JSONValue {
        func int(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }
        func real(_ value: Double?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
        var gps = JSONValue.null
        if let gpsLatitude, let gpsLongitude {
            gps = ["latitude": real(gpsLatitude), "longitude": real(gpsLongitude)]
        }
        return [
            "width": int(width), "height": int(height), "durationSeconds": real(durationSeconds),
            "pages": int(pages), "takenAt": .optional(takenAt), "cameraMake": .optional(cameraMake),
            "cameraModel": .optional(cameraModel), "gps": gps,
        ]
    }

    /// The same without coordinates: what is shown and recorded while ASSETD_KEEP_GPS is off.
    public var withoutGPS: MediaMetadata {
        var media = self
        media.gpsLatitude = nil
        media.gpsLongitude = nil
        return media
    }
}
