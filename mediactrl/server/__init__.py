"""The bundled media server: CFW control side (``control``), the msc-mixer executor
(``mixer_service``); the SIP and media parts live in their own modules."""
