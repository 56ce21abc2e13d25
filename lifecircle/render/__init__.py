"""Drawing what the analyses computed: folium maps, matplotlib figures, HTML. Computes nothing."""
