/// Which assetd this is: `assetd --version`, the "starting" line and /metrics'
/// assetd_build_info. The release; scripts/package reads it from here and names the
/// package VERSION~gitN.HASH (`dpkg -s assetd` shows the commit it was built from).
public enum AssetdVersion {
    public static let current = "0.1.0"
}
