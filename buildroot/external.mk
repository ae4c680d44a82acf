include $(sort $(wildcard $(BR2_EXTERNAL_SPIS_PATH)/package/*/*.mk))
